"""`smolvlm-video caption` on the tiny checkpoint: records, errors, resume, shards, dry runs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import requires_ffmpeg
from smolvlm_video.cli.main import cli

pytestmark = [pytest.mark.slow, requires_ffmpeg]


@pytest.fixture
def folder(tmp_path, clip, make_video):
    root = tmp_path / "clips"
    (root / "sub dir").mkdir(parents=True)
    shutil.copy(clip, root / "a.mp4")
    shutil.copy(make_video("portrait.mp4", size="120x200"), root / "sub dir" / "vidéo b.mp4")
    (root / "broken.mp4").write_text("not a video at all\n")
    (root / "empty.mov").write_bytes(b"")
    (root / "notes.txt").write_text("ignored: not a video extension")
    return root


def caption(tiny_checkpoint: Path, *args: str):
    base = ["caption", "--model", str(tiny_checkpoint), "--max-new-tokens", "4", "--quiet"]
    return CliRunner().invoke(cli, [*base, *args])


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_mixed_folder_gives_one_typed_record_per_clip(tiny_checkpoint, folder, tmp_path):
    out = tmp_path / "captions.jsonl"
    result = caption(tiny_checkpoint, str(folder), "-o", str(out), "--batch-size", "2")
    assert result.exit_code == 1  # some clips failed
    records = {Path(r["path"]).name: r for r in lines(out)}
    assert sorted(records) == ["a.mp4", "broken.mp4", "empty.mov", "vidéo b.mp4"]
    assert records["a.mp4"]["status"] == "ok" and isinstance(records["a.mp4"]["caption"], str)
    assert records["vidéo b.mp4"]["windows"][0]["frame_count"] == 3
    assert records["broken.mp4"]["error"]["type"] == "not_a_video"
    assert records["empty.mov"]["error"]["type"] == "empty"
    for record in records.values():  # greedy: no temperature or top_p took effect
        assert not record["generation"]["do_sample"]
        assert record["generation"]["temperature"] is None and record["generation"]["top_p"] is None

    rerun = caption(tiny_checkpoint, str(folder), "-o", str(out), "--no-retry-errors")
    assert rerun.exit_code == 0 and len(lines(out)) == 4  # everything skipped, nothing duplicated


def test_dry_run_writes_nothing(tiny_checkpoint, folder, tmp_path):
    out = tmp_path / "captions.jsonl"
    result = caption(tiny_checkpoint, str(folder), "-o", str(out), "--dry-run")
    assert result.exit_code == 0 and not out.exists()
    assert result.output.count("caption\t") == 4


def test_two_shards_cover_the_folder_exactly_once(tiny_checkpoint, folder, tmp_path):
    listed = []
    for index in range(2):
        result = caption(
            tiny_checkpoint,
            str(folder),
            "-o",
            str(tmp_path / "x.jsonl"),
            "--shard",
            f"{index}/2",
            "--dry-run",
        )
        listed += [line.split("\t")[1] for line in result.output.splitlines() if "\t" in line]
    assert sorted(listed) == sorted(str(p) for p in folder.rglob("*") if p.suffix in (".mp4", ".mov"))


def test_empty_folder_is_a_clear_message_and_exit_0(tiny_checkpoint, tmp_path):
    (tmp_path / "nothing").mkdir()
    result = CliRunner().invoke(cli, ["caption", str(tmp_path / "nothing"), "-o", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 0 and "No videos found" in result.output


@pytest.mark.parametrize("where", ["missing", "parent-is-a-file", "read-only"])
def test_unwritable_output_fails_before_loading_a_model(folder, tmp_path, where):
    target = tmp_path / "out"
    if where == "parent-is-a-file":
        target.write_text("a file, not a folder")
    if where == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root can write to read-only folders")
        target.mkdir(mode=0o500)
    result = CliRunner().invoke(
        cli, ["caption", str(folder), "-o", str(target / "c.jsonl"), "--model", "/no/model"]
    )
    assert result.exit_code == 2, result.output  # a usage error, not the model's load error
    assert {
        "missing": "does not exist",
        "parent-is-a-file": "does not exist",
        "read-only": "Permission denied",
    }[where] in result.output


def test_killed_run_resumes_to_exactly_one_ok_record_per_clip(tiny_checkpoint, make_video, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    root = tmp_path / "many"
    root.mkdir()
    source = make_video("kill.mp4", size="64x48", rate=10, seconds=20)
    for index in range(10):
        shutil.copy(source, root / f"clip{index:02d}.mp4")
    out = tmp_path / "captions.jsonl"
    command = [sys.executable, "-m", "smolvlm_video", "caption", str(root), "-o", str(out), "--quiet"]
    command += ["--model", str(tiny_checkpoint), "--max-new-tokens", "48", "--batch-size", "1", "--fps", "3"]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 2:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait(timeout=60)
    killed = process.returncode == -signal.SIGKILL
    before = out.read_text(encoding="utf-8").splitlines()
    assert killed, "the run finished before it could be killed"
    assert 2 <= len(before) < 10

    subprocess.run(command, check=True, timeout=300)
    records = lines(out)  # every line parses
    assert sorted(r["path"] for r in records if r["status"] == "ok") == sorted(str(p) for p in root.iterdir())
    assert len(records) == 10


def test_ask_streams_an_answer_about_a_video_and_an_image(tiny_checkpoint, clip, tmp_path):
    from PIL import Image

    image = tmp_path / "still.png"
    Image.new("RGB", (80, 60), "red").save(image)
    for media in (clip, image):
        result = CliRunner().invoke(
            cli,
            ["ask", str(media), "What is this?", "--model", str(tiny_checkpoint), "--max-new-tokens", "5"],
        )
        assert result.exit_code == 0, result.output
        assert result.output.strip()


def test_ask_about_a_bad_file_is_a_clean_error(tiny_checkpoint, tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("text, not video")
    result = CliRunner().invoke(cli, ["ask", str(bad), "What?", "--model", str(tiny_checkpoint)])
    assert result.exit_code == 1 and "text file, not a video" in result.output


@pytest.mark.parametrize("kind", ["srt", "vtt"])
def test_subtitles_for_a_seven_minute_clip_parse(tiny_checkpoint, make_video, tmp_path, kind):
    import subprocess

    root = tmp_path / "long"
    root.mkdir()
    shutil.copy(make_video("seven.mp4", size="64x48", rate=2, seconds=420), root / "seven.mp4")
    out = tmp_path / "subs" / "captions.jsonl"
    out.parent.mkdir()
    result = caption(
        tiny_checkpoint, str(root), "-o", str(out), "--subtitles", kind, "--max-frames", "8", "--summarize"
    )
    assert result.exit_code == 0, result.output
    (record,) = lines(out)
    assert record["summarized"] is True and isinstance(record["caption"], str)
    spans = [(s["start"], s["end"]) for s in record["windows"]]
    assert spans == [(0.0, 210.0), (210.0, 420.0)]
    stamps = [t for s in record["windows"] for t in s["timestamps"]]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    (subtitles,) = out.parent.glob(f"seven.*.{kind}")
    probe = [
        "ffprobe",
        "-v",
        "error",
        "-count_packets",
        "-show_entries",
        "stream=nb_read_packets",
        "-of",
        "csv=p=0",
    ]
    packets = subprocess.run([*probe, str(subtitles)], capture_output=True, text=True, check=True).stdout
    assert packets.strip() == "2"


def test_prompt_file_answers_each_named_prompt(tiny_checkpoint, clip, tmp_path):
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"short": "One line?", "detailed": "Describe this video in detail."}))
    out = tmp_path / "captions.jsonl"
    result = caption(tiny_checkpoint, str(clip), "-o", str(out), "--prompt-file", str(prompts))
    assert result.exit_code == 0, result.output
    (record,) = lines(out)
    assert set(record["answers"]) == {"short", "detailed"} and record["caption"] == record["answers"]["short"]
    assert [prompt["name"] for prompt in record["prompts"]] == ["short", "detailed"]
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert caption(tiny_checkpoint, str(clip), "-o", str(out), "--prompt-file", str(bad)).exit_code == 2


def test_json_progress_lines_and_summary(tiny_checkpoint, folder, tmp_path):
    out = tmp_path / "captions.jsonl"
    result = CliRunner().invoke(
        cli,
        [
            "caption",
            str(folder),
            "-o",
            str(out),
            "--model",
            str(tiny_checkpoint),
            "--max-new-tokens",
            "3",
            "--json-progress",
        ],
    )
    *progress, last = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert [p["done"] for p in progress] == [1, 2, 3, 4] and progress[-1]["failed"] == 2
    summary = last["summary"]
    assert summary["captioned"] == 2 and sum(summary["failed"].values()) == 2
    assert summary["clips_per_minute"] > 0


def test_quiet_prints_nothing(tiny_checkpoint, clip, tmp_path):
    result = caption(
        tiny_checkpoint, str(clip), "-o", str(tmp_path / "captions.jsonl")
    )  # caption() adds --quiet
    assert result.exit_code == 0 and result.output == ""


def test_uris_are_a_clear_usage_error(tiny_checkpoint, tmp_path):
    result = caption(tiny_checkpoint, "s3://bucket/clips", "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 2 and "Mount the bucket" in result.output
    assert not (tmp_path / "out.jsonl").exists()


BAD_VALUES = [
    (["--fps", "0"], "--fps"),
    (["--max-frames", "0"], "--max-frames"),
    (["--frame-side", "8"], "--frame-side"),
    (["--start", "-1"], "--start"),
    (["--start", "5", "--end", "2"], "--end"),
    (["--window-seconds", "0"], "--window-seconds"),
    (["--max-new-tokens", "0"], "--max-new-tokens"),
    (["--min-new-tokens", "9"], "--min-new-tokens"),  # more than --max-new-tokens
    (["--temperature", "-1"], "--temperature"),
    (["--shard", "2/2"], "--shard"),
    (["--batch-size", "0"], "--batch-size"),
]


@pytest.mark.parametrize(("args", "flag"), BAD_VALUES, ids=[" ".join(a) for a, _ in BAD_VALUES])
def test_every_bad_option_value_is_a_usage_error_naming_its_flag(tiny_checkpoint, clip, tmp_path, args, flag):
    out = tmp_path / "out.jsonl"
    result = caption(tiny_checkpoint, str(clip), "-o", str(out), *args)
    assert result.exit_code == 2, result.output
    assert flag in result.output and "Traceback" not in result.output
    assert not out.exists()  # refused before any work


def test_unusable_model_and_inputs_are_usage_errors(clip, tmp_path):
    (tmp_path / "not-a-model").mkdir()
    out = str(tmp_path / "out.jsonl")
    result = CliRunner().invoke(
        cli, ["caption", str(clip), "-o", out, "--model", str(tmp_path / "not-a-model")]
    )
    assert result.exit_code == 2 and "not a loadable SmolVLM checkpoint" in result.output
    result = CliRunner().invoke(cli, ["caption", str(tmp_path / "list.txt"), "--from-list", "-o", out])
    assert result.exit_code == 2 and "cannot read this list" in result.output


def _command(*args: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "smolvlm_video", "caption", *args]


def _heed_ctrl_c() -> None:
    """Ctrl-C acts in the child even where the suite runs with SIGINT ignored, as a background job does."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_while_the_model_loads_exits_130(tiny_checkpoint, clip, tmp_path):
    import signal
    import subprocess
    import time

    model = tmp_path / "model"
    shutil.copytree(tiny_checkpoint, model)
    fifos = sorted(model.glob("*.json"))
    for path in fifos:  # whichever the loader opens first holds it until the test lets go
        path.unlink()
        os.mkfifo(path)
    out = tmp_path / "out.jsonl"
    process = subprocess.Popen(
        _command(str(clip), "-o", str(out), "--model", str(model)),
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_heed_ctrl_c,
    )
    held, deadline = None, time.monotonic() + 120
    while held is None and time.monotonic() < deadline and process.poll() is None:
        for path in fifos:
            try:  # succeeds only once the command has the file open for reading: it is loading the model
                held = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:
                time.sleep(0.02)
    assert held is not None, "the command never began to load the model"
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        os.close(held)
    assert process.returncode == 130, stderr[-2000:]
    assert "Interrupted" in stderr and "Traceback" not in stderr and "Aborted" not in stderr


def _small_disk(folder: Path) -> Any:
    """A 16 KB tmpfs at `folder` where this user may mount one; else a 16 KB file-size limit for the child."""
    import resource
    import subprocess

    folder.mkdir()
    if os.geteuid() == 0 and shutil.which("mount"):
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(folder)], capture_output=True
        )
        if mounted.returncode == 0:
            return None
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))


def test_a_full_disk_stops_the_run_with_one_clear_message(tiny_checkpoint, make_video, tmp_path):
    import re
    import subprocess

    root = tmp_path / "clips"
    root.mkdir()
    for index in range(30):
        shutil.copy(make_video("short.mp4", size="64x48", seconds=2), root / f"clip{index:02d}.mp4")
    disk = tmp_path / "disk"
    limit = _small_disk(disk)
    out = disk / "captions.jsonl"
    args = ["--model", str(tiny_checkpoint), "--max-new-tokens", "3", "--quiet"]
    try:
        full = subprocess.run(_command(str(root), "-o", str(out), *args), capture_output=True, text=True,
                              preexec_fn=limit, timeout=300)  # fmt: skip
        assert full.returncode == 2, full.stderr[-3000:]
        assert "Traceback" not in full.stderr
        safe = re.search(r"The (\d+) records in it are safe", full.stderr)
        assert safe and ("No space left on device" in full.stderr or "File too large" in full.stderr)
        written = lines(out)  # every line is whole
        assert len(written) == int(safe.group(1)) and 0 < len(written) < 30
        shutil.copy(out, tmp_path / "captions.jsonl")
    finally:
        if limit is None:
            subprocess.run(["umount", str(disk)], check=True)
    resumed = subprocess.run(_command(str(root), "-o", str(tmp_path / "captions.jsonl"), *args), timeout=300)
    assert resumed.returncode == 0
    assert sorted(r["path"] for r in lines(tmp_path / "captions.jsonl")) == sorted(
        str(p) for p in root.iterdir()
    )


def json_features(features: Any, path: str = "") -> set[str]:
    """The dotted paths of the untyped (Json) features of a datasets Features tree."""
    import datasets

    if isinstance(features, datasets.Json):
        return {path}
    if isinstance(features, dict):
        return set().union(*(json_features(f, f"{path}.{name}".lstrip(".")) for name, f in features.items()))
    inner = getattr(features, "feature", None)  # List and Sequence
    return json_features(inner, path) if inner is not None else set()


def test_records_of_every_mode_load_as_one_typed_table(tiny_checkpoint, folder, make_video, tmp_path):
    datasets = pytest.importorskip("datasets")
    prompts = tmp_path / "prompts.json"
    tags = {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}}}
    prompts.write_text(
        json.dumps({"scene": "Describe the scene.", "tags": {"prompt": "Tags?", "schema": tags}})
    )
    long_clip = make_video("mixed-modes.mp4", size="64x48", seconds=7)
    runs = {  # an error record and one prompt; a prompt file with a schema; several windows
        "mixed.jsonl": [str(folder / "broken.mp4"), str(folder / "a.mp4")],
        "file.jsonl": [str(folder / "a.mp4"), "--prompt-file", str(prompts), "--max-new-tokens", "40"],
        "windows.jsonl": [str(long_clip), "--window-seconds", "3"],
    }
    for name, args in runs.items():
        caption(tiny_checkpoint, *args, "-o", str(tmp_path / name))
    together = tmp_path / "together.jsonl"
    together.write_text("".join((tmp_path / name).read_text(encoding="utf-8") for name in runs))
    records = lines(together)
    assert {r["status"] for r in records} == {"ok", "error"} and max(len(r["windows"]) for r in records) == 3
    table = datasets.load_dataset(
        "json", data_files=str(together), split="train", cache_dir=str(tmp_path / "hf")
    )
    features = table.features
    assert features["caption"] == datasets.Value("string")
    assert features["windows"].feature["caption"] == datasets.Value("string")
    assert json_features(features) == {"answers", "windows.answers", "generation.extra"}
    assert table[2]["answers"]["tags"] == records[2]["answers"]["tags"]  # the parsed answer, back as JSON


def test_the_window_seconds_flag_sets_the_window_and_old_names_are_gone(
    tiny_checkpoint, make_video, tmp_path
):
    clip = str(make_video("old-flag.mp4", size="64x48", seconds=7))
    out = tmp_path / "windows.jsonl"
    assert caption(tiny_checkpoint, clip, "-o", str(out), "--window-seconds", "3").exit_code == 0
    (record,) = lines(out)
    assert len(record["windows"]) == 3 and record["sampling"]["window_seconds"] == 3
    for old in (["--segment-seconds", "3"], ["--format", "srt"]):  # dropped before any release (CHANGELOG.md)
        result = caption(tiny_checkpoint, clip, "-o", str(tmp_path / "old.jsonl"), *old)
        assert result.exit_code == 2 and "No such option" in result.output, old
