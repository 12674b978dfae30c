"""Answers constrained to a JSON schema, on the tiny random-weight checkpoint: valid by construction."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from conftest import requires_ffmpeg
from smolvlm_video.cli.main import cli

from smolvlm_video.errors import OptionsError
from smolvlm_video.model.schemas import JsonSchema

pytestmark = [requires_ffmpeg]

SCENE = {
    "type": "object",
    "properties": {
        "place": {"enum": ["indoor", "outdoor", "unknown"]},
        "people_moving": {"type": "boolean"},
        "daylight": {"type": "boolean"},
        "mood": {"enum": ["calm", "busy", "tense"]},
    },
    "required": ["place", "people_moving", "daylight", "mood"],
}
TAGS = {
    "type": "array",
    "items": {"enum": ["car", "dog", "tree", "person"]},
    "maxItems": 3,
    "uniqueItems": True,
}


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def scene_file(tmp_path) -> Path:
    path = tmp_path / "scene.schema.json"
    path.write_text(json.dumps(SCENE, indent=2))
    return path


@pytest.fixture
def clips(tmp_path, make_video) -> Path:
    root = tmp_path / "clips"
    root.mkdir()
    for name, seconds in (("a", 3), ("b", 4), ("long", 7)):
        shutil.copy(make_video(f"schema-{seconds}.mp4", size="64x48", seconds=seconds), root / f"{name}.mp4")
    return root


@pytest.mark.slow
def test_every_caption_validates_against_the_schema(tiny_checkpoint, clips, scene_file, tmp_path):
    out = tmp_path / "captions.jsonl"
    args = ["caption", str(clips), "-o", str(out), "--model", str(tiny_checkpoint), "--quiet"]
    result = run(*args, "--json-schema", str(scene_file), "--max-new-tokens", "200", "--window-seconds", "3")
    assert result.exit_code == 0, result.output
    records = lines(out)
    assert len(records) == 3 and json.loads(records[0]["prompts"][0]["schema"]) == SCENE
    for record in records:
        values = [segment["answers"]["caption"] for segment in record["windows"]]
        assert record["answers"]["caption"] == (values[0] if len(values) == 1 else values)  # one per window
        assert record["caption"] == "\n".join(segment["caption"] for segment in record["windows"])
        for segment, value in zip(record["windows"], values, strict=True):
            jsonschema.validate(value, SCENE)
            assert json.loads(segment["caption"]) == value  # the caption is the answer's JSON text
    assert max(len(r["windows"]) for r in records) == 3  # the 7 s clip: windows of 3 s


@pytest.mark.slow
def test_a_prompt_file_gives_each_prompt_its_own_schema(tiny_checkpoint, clips, scene_file, tmp_path):
    prompts = tmp_path / "prompts.json"
    prompts.write_text(
        json.dumps({"scene": "Describe the scene.", "tags": {"prompt": "Tags?", "schema": TAGS}})
    )
    args = [
        "caption",
        str(clips / "a.mp4"),
        "--model",
        str(tiny_checkpoint),
        "--quiet",
        "--max-new-tokens",
        "200",
    ]
    args += ["--prompt-file", str(prompts)]
    result = run(*args, "-o", str(tmp_path / "own.jsonl"))
    assert result.exit_code == 0, result.output
    (record,) = lines(tmp_path / "own.jsonl")
    assert isinstance(record["answers"]["scene"], str) and record["caption"] == record["answers"]["scene"]
    assert [(p["name"], p["schema"] is not None) for p in record["prompts"]] == [
        ("scene", False),
        ("tags", True),
    ]
    jsonschema.validate(record["answers"]["tags"], TAGS)

    result = run(*args, "-o", str(tmp_path / "both.jsonl"), "--json-schema", str(scene_file))
    assert result.exit_code == 0, result.output
    (record,) = lines(tmp_path / "both.jsonl")
    jsonschema.validate(record["answers"]["scene"], SCENE)  # --json-schema: for the prompts without their own
    jsonschema.validate(record["answers"]["tags"], TAGS)


@pytest.mark.slow
def test_an_answer_cut_off_is_a_truncated_record(tiny_checkpoint, clips, scene_file, tmp_path):
    out = tmp_path / "captions.jsonl"
    args = ["caption", str(clips / "a.mp4"), "-o", str(out), "--model", str(tiny_checkpoint), "--quiet"]
    result = run(*args, "--json-schema", str(scene_file), "--max-new-tokens", "5")
    assert result.exit_code == 1
    (record,) = lines(out)
    assert record["status"] == "error" and record["error"]["type"] == "truncated"
    assert "raise --max-new-tokens" in record["error"]["message"]


@pytest.mark.slow
def test_ask_answers_in_json(tiny_checkpoint, clips, scene_file):
    args = ["ask", str(clips / "a.mp4"), "Where is this?", "--model", str(tiny_checkpoint)]
    result = run(*args, "--json-schema", str(scene_file), "--max-new-tokens", "200")
    assert result.exit_code == 0, result.output
    answer = result.output.strip().splitlines()[-1]
    assert " " not in answer  # no free whitespace: the enums hold none either
    jsonschema.validate(json.loads(answer), SCENE)
    cut = run(*args, "--json-schema", str(scene_file), "--max-new-tokens", "4")
    assert cut.exit_code == 1 and "raise --max-new-tokens" in cut.output


@pytest.mark.parametrize(("text", "problem"), [
    (None, "cannot read the JSON schema"),
    ("{not json", "is not valid JSON"),
    ('["a", "list"]', "must hold a JSON schema object"),
    ('{"type": "nonsense"}', "is not a valid JSON schema"),
])  # fmt: skip
def test_bad_schemas_are_usage_errors(tmp_path, clips, text, problem):
    path = tmp_path / "schema.json"
    if text is not None:
        path.write_text(text)
    result = run("caption", str(clips), "-o", str(tmp_path / "out.jsonl"), "--json-schema", str(path))
    assert result.exit_code == 2 and problem in result.output and "--json-schema" in result.output
    assert not (tmp_path / "out.jsonl").exists()


def test_a_bad_schema_in_a_prompt_file_names_the_prompt(tmp_path, clips):
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"tags": {"prompt": "Tags?", "schema": {"type": 5}}}))
    result = run("caption", str(clips), "-o", str(tmp_path / "out.jsonl"), "--prompt-file", str(prompts))
    assert (
        result.exit_code == 2 and "the schema of 'tags'" in result.output and "--prompt-file" in result.output
    )


def test_schema_is_compact_and_stated_in_the_prompt():
    schema = JsonSchema(json.dumps(SCENE, indent=4))
    assert "\n" not in schema.text and ": " not in schema.text and schema.value == SCENE
    assert schema.prompt("Where?").startswith("Where?\n") and schema.text in schema.prompt("Where?")
    with pytest.raises(OptionsError) as error:
        JsonSchema("{}", "x.json").from_file("/nonexistent/x.json")
    assert error.value.option == "json_schema"


@pytest.mark.slow
def test_a_summary_follows_the_schema_too(tiny_checkpoint, clips, scene_file, tmp_path):
    out = tmp_path / "captions.jsonl"
    args = ["caption", str(clips / "long.mp4"), "-o", str(out), "--model", str(tiny_checkpoint), "--quiet"]
    result = run(*args, "--json-schema", str(scene_file), "--max-new-tokens", "200", "--window-seconds", "3",
                 "--summarize")  # fmt: skip
    assert result.exit_code == 0, result.output
    (record,) = lines(out)
    assert record["summarized"] and len(record["windows"]) == 3 and record["summary_error"] is None
    jsonschema.validate(record["answers"]["caption"], SCENE)  # one value for the whole clip, not the list
    assert json.loads(record["caption"]) == record["answers"]["caption"]


def test_a_schema_too_costly_to_compile_is_refused_before_any_work():
    from smolvlm_video.model.schemas import MAX_OPTIONAL_PROPERTIES, MAX_SCHEMA_CHARS

    optional = {f"p{i}": {"type": "string"} for i in range(MAX_OPTIONAL_PROPERTIES + 1)}
    with pytest.raises(OptionsError, match="optional properties"):  # compiling 12,000 of them took 24 GB
        JsonSchema.from_value({"type": "object", "properties": optional})
    JsonSchema.from_value({"type": "object", "properties": optional, "required": list(optional)})  # linear
    with pytest.raises(OptionsError, match="characters"):
        JsonSchema.from_value({"enum": ["x" * 100] * (MAX_SCHEMA_CHARS // 100)})
