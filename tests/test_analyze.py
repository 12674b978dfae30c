"""The Analyze tab's endpoint: a whole video into the record `smolvlm-video caption` writes for it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import requires_ffmpeg

gr = pytest.importorskip("gradio")
pytest.importorskip("scenedetect")
from demo_server import fake_spaces, served  # noqa: E402
from gradio_client import Client, handle_file  # noqa: E402
from smolvlm_video.cli.main import cli  # noqa: E402
from smolvlm_video.demo import DemoConfig  # noqa: E402
from smolvlm_video.demo.settings import Settings  # noqa: E402

pytestmark = [pytest.mark.slow, requires_ffmpeg]
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
THREE_SHOTS = EXAMPLES / "clips" / "three-shots.mp4"  # shots at 0, 3 and 7 s
SCHEMA = EXAMPLES / "schemas" / "scene.json"
PROMPT = "What is in this shot?"
MAX_NEW_TOKENS = 96  # enough for any answer the scene schema allows
# The fields that name the file or time the work: the rest of the record is the same whoever makes it.
OWN_FIELDS = {"path", "abs_path", "id", "timings", "created_at"}


@pytest.fixture(scope="module")
def config(tiny_checkpoint: Path) -> DemoConfig:
    model = str(tiny_checkpoint)
    return DemoConfig(model=model, models=(model,), device="cpu", max_frames=8, max_new_tokens=24)


@pytest.fixture(scope="module")
def client(config: DemoConfig):
    with served(config) as url:
        yield Client(url, verbose=False)


def settings(config: DemoConfig, max_new_tokens: int = MAX_NEW_TOKENS) -> list:
    """model, max_frames, fps, start, end, max_new_tokens, temperature, system"""
    return [config.model, 8, 1.0, 0, 0, max_new_tokens, 0, ""]


def test_analyze_returns_the_record_caption_writes(client, config, tiny_checkpoint, tmp_path):
    inputs = [handle_file(THREE_SHOTS), PROMPT, "scenes"]
    schema = SCHEMA.read_text(encoding="utf-8")
    timeline, text, downloads = client.predict(*inputs, schema, *settings(config), api_name="/analyze")
    ours = json.loads(text)

    out = tmp_path / "captions.jsonl"
    args = ["caption", str(THREE_SHOTS), "-o", str(out), "--model", str(tiny_checkpoint), "--device", "cpu"]
    args += ["--split", "scenes", "--max-frames", "8", "--fps", "1", "--max-new-tokens", str(MAX_NEW_TOKENS)]
    args += ["--prompt", PROMPT, "--json-schema", str(SCHEMA), "--quiet"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    (theirs,) = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]

    assert ours.keys() == theirs.keys()
    for field in ours.keys() - OWN_FIELDS:
        assert ours[field] == theirs[field], field
    assert ours["status"] == "ok" and len(ours["windows"]) == 3
    assert ours["path"] == ours["abs_path"] == "three-shots.mp4"  # the file's name, never a server path
    assert ours["timings"].keys() == theirs["timings"].keys()
    assert timeline.count('<li class="window"') == 3 and timeline.count("data:image/jpeg;base64,") == 3
    by_kind = {Path(path).suffix: Path(path) for path in downloads}
    assert json.loads(by_kind[".json"].read_text(encoding="utf-8")) == ours
    assert by_kind[".srt"].read_text(encoding="utf-8").count(" --> ") == 3
    assert by_kind[".vtt"].read_text(encoding="utf-8").startswith("WEBVTT")


def test_fixed_windows_and_the_default_prompt(client, config):
    _, text, _ = client.predict(
        handle_file(THREE_SHOTS), "", "fixed", None, *settings(config, 4), api_name="/analyze"
    )
    record = json.loads(text)
    assert [(w["start"], w["end"]) for w in record["windows"]] == [(0.0, 10.0)]
    assert (
        record["prompts"][0]["text"] == "Describe this video in detail."
        and record["sampling"]["split"] == "fixed"
    )


def test_a_bad_upload_is_a_clear_error_without_server_paths(client, config, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(os.urandom(50_000))
    with pytest.raises(Exception, match=r"broken\.mp4: .*cannot be read as a video") as raised:
        client.predict(handle_file(broken), "", "scenes", None, *settings(config, 4), api_name="/analyze")
    assert "/tmp" not in str(raised.value) and str(tmp_path) not in str(raised.value)
    image = handle_file(EXAMPLES / "images" / "testcard.png")
    with pytest.raises(Exception, match="not a video"):
        client.predict(image, "", "fixed", None, *settings(config, 4), api_name="/analyze")


def test_zerogpu_reserves_time_for_every_window(config, monkeypatch):
    """spaces.GPU gets a duration function, called with the analysis' own arguments."""
    from smolvlm_video.demo.handlers import Handlers
    from smolvlm_video.demo.zerogpu import analysis_seconds

    from smolvlm_video.batch.captioning import CaptionJob
    from smolvlm_video.batch.prefetch import plan_clip
    from smolvlm_video.options import GenerationOptions, SamplingOptions

    reserved = fake_spaces(monkeypatch)
    handlers = Handlers(config)
    steps = list(handlers.analyze(str(THREE_SHOTS), "", "scenes", settings=Settings(*settings(config, 4))))
    assert '<li class="window"' in steps[-1][0] and len(reserved) == 1
    job = CaptionJob(generation=GenerationOptions(max_new_tokens=4))
    shots = plan_clip(str(THREE_SHOTS), SamplingOptions(max_frames=8, split="scenes"))
    whole = plan_clip(str(THREE_SHOTS), SamplingOptions(max_frames=8))
    assert reserved == [analysis_seconds(config.model, job, shots, config.gpu_seconds)]
    # Three windows, three answers: more GPU time than one window of the same video.
    long = CaptionJob(generation=GenerationOptions(max_new_tokens=512))
    assert analysis_seconds("2.2B", long, shots, 10_000) > analysis_seconds("2.2B", long, whole, 10_000)
