"""The README and docs/ as a user would try them: every command, Python snippet and sample record, offline.

Each block runs in a folder of its own that holds what the examples name (`./clips`, `clip.mp4`, the
repository's `examples/`), with the test checkpoint standing in for the Hub's models. A command must exit 0,
a snippet must run, and a sample record must match, field for field, the record its command makes now
(only the model's random-weight text and what depends on the machine are left out).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import requires_ffmpeg
from doc_examples import DOCS, ROOT, TEST_CHECKPOINT, Block, argv, blocks, command_lines, record_after
from smolvlm_video.cli.main import cli

pytestmark = [pytest.mark.slow, requires_ffmpeg]

# Lines of the docs that no test runs here, each with why. Every other line that runs smolvlm-video is run.
NOT_RUN = {
    "smolvlm-video demo": "a server that runs until stopped; tests/test_demo.py serves the app and calls it",
    "smolvlm-video serve": "a server that runs until stopped; tests/test_server.py serves it and calls it",
    "CUDA_VISIBLE_DEVICES": "one process per GPU, each a `caption --shard i/4` as docs/cli.md's example",
    "--engine-option address=auto": "joins a Ray cluster started beforehand with `ray start`",
}
# Python snippets run elsewhere: gradio_client against a running app.
RUN_ELSEWHERE = {
    "from gradio_client import": "tests/test_demo.py::test_the_api_example_in_the_docs",
    "from openai import OpenAI": "tests/test_server.py::test_the_client_example_in_the_docs",
}
# What the Python snippets name, and what stands in for it here.
SNIPPET_NAMES = {
    '"256M"': None,  # the test checkpoint's folder
    'device="cuda"': 'device="cpu"',
    '"/data/clips"': '"clips"',
}
# What some snippets read, made first with the commands the docs give for it.
SNIPPET_INPUTS = {
    "captions.jsonl": ["smolvlm-video caption clips -o captions.jsonl --split scenes"],
    '"./dataset"': [
        "smolvlm-video caption clips -o captions.jsonl --split scenes",
        "smolvlm-video export captions.jsonl ./dataset --to hf",
    ],
    '"shards/features.json"': [
        "smolvlm-video caption clips -o captions.jsonl --split scenes",
        "smolvlm-video export captions.jsonl ./shards --to webdataset --clips",
    ],
}
EXAMPLE_VIDEO = ROOT / "examples" / "clips" / "testsrc2.mp4"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with what the examples name, as the working directory."""
    shutil.copytree(ROOT / "examples" / "clips", tmp_path / "clips")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    for name in ("clip.mp4", "talk.mp4", "lecture.mp4"):
        shutil.copy(EXAMPLE_VIDEO, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


SHELLS = ("console", "bash")


def _runs(line: str) -> bool:
    return not any(marker in line for marker in NOT_RUN)


COMMAND_BLOCKS = [b for b in blocks() if b.language in SHELLS and any(map(_runs, command_lines(b)))]
SNIPPETS = [b for b in blocks("python") if not any(marker in b.text for marker in RUN_ELSEWHERE)]
RECORDS = [b for b in blocks("json") if record_after(b)]


def run(line: str, checkpoint: Path, whisper: Path | None = None) -> tuple[int, str]:
    """Run one documented command line, on the test checkpoints: (exit status, output)."""
    words = [str(checkpoint) if word == TEST_CHECKPOINT else word for word in argv(line)]
    assert words[0] == "smolvlm-video", line
    if words[1] in ("caption", "ask") and "--model" not in words:
        words += ["--model", str(checkpoint)]
    if "--speech" in words and "--speech-model" not in words and whisper is not None:
        words += ["--speech-model", str(whisper)]
    if "ray" in words:  # Ray starts worker processes: the command runs as a user runs it
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_AUTH_MODE": "disabled"}
        done = subprocess.run(
            [sys.executable, "-m", "smolvlm_video", *words[1:]], env=env, capture_output=True, text=True
        )
        return done.returncode, done.stdout + done.stderr
    result = CliRunner().invoke(cli, words[1:])
    return result.exit_code, result.output


@pytest.mark.parametrize("block", COMMAND_BLOCKS, ids=lambda b: b.where)
def test_documented_commands_run(block: Block, workspace: Path, tiny_checkpoint: Path, tiny_whisper: Path):
    if "--engine ray" in block.text:
        pytest.importorskip("ray.data")
    for line in filter(_runs, command_lines(block)):
        status, output = run(line, tiny_checkpoint, tiny_whisper)
        assert status == 0, f"{block.where}: {line}\n{output[-3000:]}"


@pytest.mark.parametrize("block", SNIPPETS, ids=lambda b: b.where)
def test_documented_python_runs(block: Block, workspace: Path, tiny_checkpoint: Path):
    code = block.text
    needed = [line for name, lines in SNIPPET_INPUTS.items() if name in code for line in lines]
    for line in dict.fromkeys(needed):
        status, output = run(line, tiny_checkpoint)
        assert status == 0, f"{block.where}: {line}\n{output[-3000:]}"
    for name, stand_in in SNIPPET_NAMES.items():
        code = code.replace(name, stand_in or repr(str(tiny_checkpoint)))
    exec(compile(code, block.where, "exec"), {"__name__": "__docs__"})


MACHINE_FIELDS = frozenset(
    {"abs_path", "id", "created_at", "timings", "tool_version"}
)  # differ by checkout and machine
TEXT_FIELDS = frozenset({"caption", "answers"})  # the random weights' text: differs with the CPU's arithmetic


@pytest.mark.parametrize("block", RECORDS, ids=lambda b: b.where)
def test_sample_records_are_what_their_command_writes(block: Block, workspace: Path, tiny_checkpoint: Path):
    line, shown = record_after(block)  # type: ignore[misc]
    status, output = run(line, tiny_checkpoint)
    assert status == 0, output[-3000:]
    (written,) = map(json.loads, (workspace / "captions.jsonl").read_text(encoding="utf-8").splitlines())
    written["model"]["id"] = written["model"]["id"].replace(str(tiny_checkpoint), TEST_CHECKPOINT)
    assert _shown_part(shown, written) == shown, block.where  # every field shown, with the value shown
    for window in written["windows"]:  # the noise must still have the shape shown: text, or valid JSON
        assert isinstance(window["caption"], str) and set(window["answers"]) == set(shown["answers"])


def _shown_part(shown: object, written: object, skip: frozenset = MACHINE_FIELDS | TEXT_FIELDS) -> object:
    """`written` cut to the fields `shown` has, at any depth; the fields in `skip` as `shown` has them."""
    if isinstance(shown, dict) and isinstance(written, dict):
        return {
            k: v if k in skip else _shown_part(v, written.get(k, "<absent>"), TEXT_FIELDS)
            for k, v in shown.items()
        }
    if isinstance(shown, list) and isinstance(written, list) and len(shown) == len(written):
        return [_shown_part(s, w, skip) for s, w in zip(shown, written, strict=True)]
    return written


def test_every_documented_command_is_run_or_says_why_not():
    lines = [line for b in blocks() for line in command_lines(b)]
    assert len([line for line in lines if _runs(line)]) >= 15  # the parser still finds the commands
    for marker in NOT_RUN:
        assert any(marker in line for line in lines), f"NOT_RUN names {marker!r}, which no doc shows any more"
    assert len(SNIPPETS) >= 3 and len(RECORDS) >= 3
    assert all(path.exists() for path in DOCS)


def test_the_readmes_model_table_is_the_registry():
    from smolvlm_video.model.registry import MODELS

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = [line for line in text.splitlines() if line.startswith("| `") and "HuggingFaceTB/" in line]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    assert [[name.split("`")[1], hub_id, side, tokens, context.replace(",", "")]
            for name, hub_id, side, tokens, context in cells] == [
        [s.name, s.hub_id, str(s.frame_side), str(s.tokens_per_frame), str(s.context_length)]
        for s in MODELS.values()
    ]  # fmt: skip


def test_the_architecture_names_every_module():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    tables = "\n".join(line for line in text.splitlines() if line.startswith("|"))
    package = ROOT / "smolvlm_video"
    modules = sorted(
        path.relative_to(ROOT).with_suffix("").as_posix()
        for folder in (package, ROOT / "cli", ROOT / "demo")
        for path in folder.rglob("*.py")
        if path.name != "__init__.py" and "__pycache__" not in path.parts
    )
    missing = [module for module in modules if f"`{module.split('/')[-1]}`" not in _row_of(tables, module)]
    assert not missing, f"docs/architecture.md's tables leave out {missing}"


def _row_of(tables: str, module: str) -> str:
    """The table rows that name a module's folder (`video/`, `cli/`), or the core's own rows."""
    parts = module.split("/")
    folder = parts[-2] if len(parts) > 2 else parts[0]
    rows = [row for row in tables.splitlines() if f"`{folder}/`" in row]
    return "\n".join(rows) if rows else tables
