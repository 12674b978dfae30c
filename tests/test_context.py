"""A prompt that cannot fit the model's context is refused before generation, saying what made it long."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import requires_ffmpeg
from smolvlm_video.cli.main import cli

from smolvlm_video import GenerationOptions, SamplingOptions, sample_video
from smolvlm_video.errors import PromptTooLongError
from smolvlm_video.model.generate import generate, stream
from smolvlm_video.model.inputs import build_inputs
from smolvlm_video.model.loading import LoadedModel, load_model
from smolvlm_video.model.prompts import chat
from smolvlm_video.model.schemas import JsonSchema, Question

pytestmark = [pytest.mark.slow, requires_ffmpeg]
SHORT_CONTEXT = 512  # tokens: the tiny checkpoint's language model, given a short position range


@pytest.fixture(scope="module")
def short_checkpoint(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint with a 512-token context in its config, as a checkpoint folder of its own."""
    folder = tmp_path_factory.mktemp("short-context") / "checkpoint"
    shutil.copytree(tiny_checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["max_position_embeddings"] = SHORT_CONTEXT
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def short_model(short_checkpoint: Path) -> LoadedModel:
    model = load_model(str(short_checkpoint), device="cpu")
    assert model.context_length == SHORT_CONTEXT
    return model


@pytest.fixture
def no_generation(monkeypatch: pytest.MonkeyPatch, short_model: LoadedModel) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("generate() ran for a prompt that cannot fit")

    monkeypatch.setattr(short_model.model, "generate", refuse)


def enum_schema(values: int) -> JsonSchema:
    properties = {"label": {"enum": [f"category number {i}" for i in range(values)]}}
    return JsonSchema.from_value({"type": "object", "properties": properties, "required": ["label"]})


def test_too_many_frames(short_model, make_video, no_generation):
    sampling = SamplingOptions(fps=8, max_frames=64).for_frame_side(short_model.frame_side)
    video = sample_video(make_video("context-10s.mp4", seconds=10), sampling)
    messages = chat("Describe this video.", video)
    length = int(build_inputs(short_model.processor, [messages])["attention_mask"].sum())
    assert length > SHORT_CONTEXT
    with pytest.raises(PromptTooLongError) as caught:
        generate(short_model, [messages], GenerationOptions(max_new_tokens=8))
    message = str(caught.value)
    assert f"The prompt is {length:,} tokens" in message and f"context of {SHORT_CONTEXT:,} tokens" in message
    assert "Most of it is the frames and images" in message and "--max-frames" in message


def test_an_answer_that_would_not_fit_counts_too(short_model, make_video, no_generation):
    sampling = SamplingOptions(fps=1, max_frames=64).for_frame_side(short_model.frame_side)
    messages = chat("Describe.", sample_video(make_video("context-3s.mp4", seconds=3), sampling))
    length = int(build_inputs(short_model.processor, [messages])["attention_mask"].sum())
    assert length < SHORT_CONTEXT
    with pytest.raises(PromptTooLongError, match=f"with up to {SHORT_CONTEXT - length + 1} new tokens"):
        list(stream(short_model, messages, GenerationOptions(max_new_tokens=SHORT_CONTEXT - length + 1)))


def test_a_long_schema(short_model, no_generation):
    schema = enum_schema(60)
    messages = chat(Question("Which category?", schema))
    with pytest.raises(PromptTooLongError, match=r"Most of it is the JSON schema .*shorter JSON schema"):
        list(stream(short_model, messages, GenerationOptions(max_new_tokens=8)))


def test_ask_with_a_5000_value_enum_on_a_16k_context(tiny_checkpoint, clip, tmp_path):
    schema_file = tmp_path / "labels.json"
    schema_file.write_text(enum_schema(5000).text)
    command = ["ask", str(clip), "Which category?", "--json-schema", str(schema_file)]
    command += ["--model", str(tiny_checkpoint), "--device", "cpu", "--max-frames", "4"]
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 1, result.output
    assert "context of 16,384 tokens" in result.stderr and "Most of it is the JSON schema" in result.stderr
    assert result.stdout == ""


def test_caption_records_the_clip_that_cannot_fit_and_captions_the_others(
    short_checkpoint, make_video, tmp_path
):
    folder = tmp_path / "clips"
    folder.mkdir()
    for name, seconds in (("long.mp4", 10), ("short.mp4", 2)):
        shutil.copy(make_video(f"context-{name}", seconds=seconds), folder / name)
    output = tmp_path / "captions.jsonl"
    command = ["caption", str(folder), "-o", str(output), "--model", str(short_checkpoint), "--fps", "8"]
    result = CliRunner().invoke(cli, [*command, "--max-new-tokens", "4", "--device", "cpu"])
    assert result.exit_code == 1, result.output  # some clips failed
    records = {Path(r["path"]).name: r for r in map(json.loads, output.read_text().splitlines())}
    assert records["short.mp4"]["status"] == "ok" and records["short.mp4"]["caption"]
    assert records["long.mp4"]["status"] == "error"
    assert records["long.mp4"]["error"]["type"] == "prompt_too_long"
    assert "Most of it is the frames and images" in records["long.mp4"]["error"]["message"]
