"""Outside numbers and pixels are bounded before work starts.

- Every float field of every option object refuses NaN, infinity and 1e308, naming the field: through
  the Python objects, `caption`, `ask`, `serve` and a demo API call.
- A video whose frames are over the pixel budget (a 4.5 MB MJPEG of 16000x16000 frames) is refused from
  its header, before a frame is decoded: by `load_media`, `caption` (an error record), `ask` (exit 2),
  the server (413) and the demo (a message).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ffmpeg, requires_ffmpeg
from smolvlm_video.cli.main import cli

from smolvlm_video.batch.ray_engine import RayOptions
from smolvlm_video.errors import OptionsError, TooLargeError
from smolvlm_video.export.options import CutOptions, ExportOptions
from smolvlm_video.options import GenerationOptions, ModelOptions, SamplingOptions
from smolvlm_video.server.options import ServerOptions

ROOT = Path(__file__).resolve().parent.parent
VIDEO = ROOT / "examples" / "clips" / "testsrc2.mp4"
BAD_NUMBERS = ["nan", "inf", "-inf", "1e308"]

# Every float field of every option object, with what else it needs to be built.
FLOAT_FIELDS = [
    (SamplingOptions, "fps", {}),
    (SamplingOptions, "start", {}),
    (SamplingOptions, "end", {}),
    (SamplingOptions, "window_seconds", {}),
    (SamplingOptions, "snap_seconds", {}),
    (SamplingOptions, "min_scene_seconds", {}),
    (GenerationOptions, "temperature", {"do_sample": True}),
    (GenerationOptions, "top_p", {"do_sample": True}),
    (GenerationOptions, "repetition_penalty", {}),
    (RayOptions, "num_gpus_per_worker", {}),
    (ServerOptions, "fetch_seconds", {}),
]
OPTION_CLASSES = (SamplingOptions, GenerationOptions, ModelOptions, RayOptions, ServerOptions, CutOptions,
                  ExportOptions)  # fmt: skip


def test_the_list_holds_every_float_field_of_every_option_object():
    floats = {
        (cls, f.name)
        for cls in OPTION_CLASSES
        for f in dataclasses.fields(cls)
        if "float" in str(typing.get_type_hints(cls)[f.name])
    }
    assert floats == {(cls, name) for cls, name, _ in FLOAT_FIELDS}


@pytest.mark.parametrize("value", BAD_NUMBERS)
@pytest.mark.parametrize(("cls", "name", "extra"), FLOAT_FIELDS, ids=lambda x: getattr(x, "__name__", x))
def test_python_options_refuse_non_finite_and_huge_numbers(cls, name, extra, value):
    with pytest.raises(OptionsError, match=name) as raised:
        cls(**{**extra, name: float(value)})
    assert raised.value.option == name


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_temperature_zero_means_greedy_but_nan_is_refused(value):
    with pytest.raises(OptionsError, match="temperature") as raised:
        GenerationOptions.from_temperature(float(value))
    assert raised.value.option == "temperature"


@pytest.mark.parametrize("value", [1.5, True, "3", float("nan")])
def test_whole_number_fields_refuse_what_is_not_one(value):
    with pytest.raises(OptionsError, match="max_frames"):
        SamplingOptions(max_frames=value)  # type: ignore[arg-type]


CLI_FLOATS = ["--fps", "--start", "--end", "--window-seconds", "--snap-seconds", "--min-scene-seconds",
              "--temperature"]  # fmt: skip


@pytest.mark.parametrize("value", BAD_NUMBERS)
@pytest.mark.parametrize("flag", CLI_FLOATS)
@pytest.mark.parametrize("command", ["caption", "ask"])
def test_the_cli_refuses_them_naming_the_flag(tiny_checkpoint, tmp_path, command, flag, value):
    where = ["-o", str(tmp_path / "out.jsonl")] if command == "caption" else ["What?"]
    args = [command, str(VIDEO), *where, "--model", str(tiny_checkpoint), f"{flag}={value}"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert flag in result.output and ("must be" in result.output or "not in the range" in result.output)
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_caption_refuses_them_for_the_ray_engine_flag(tiny_checkpoint, tmp_path, value):
    args = ["caption", str(VIDEO), "-o", str(tmp_path / "out.jsonl"), "--model", str(tiny_checkpoint),
            "--engine", "ray", "--engine-option", f"num_gpus_per_worker={value}"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "--engine-option" in result.output, result.output
    assert "num_gpus_per_worker must be" in result.output or "must be a float" in result.output, result.output


@pytest.mark.slow
def test_serve_refuses_a_non_finite_fetch_deadline(tiny_checkpoint):
    args = ["serve", "--model", str(tiny_checkpoint), "--allow-url-fetch", "--fetch-seconds", "nan"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "--fetch-seconds" in result.output and "fetch_seconds" in result.output


# The pixel budget.


@pytest.fixture(scope="session")
def huge(media_dir: Path) -> Path:
    """A 4.5 MB MJPEG AVI of three 16000x16000 frames: 384 MB a frame once decoded."""
    path = media_dir / "huge.avi"
    if not path.exists():
        ffmpeg("-f", "lavfi", "-i", "color=s=16000x16000:r=1:d=3", "-c:v", "mjpeg", "-q:v", "31", str(path))
    return path


@pytest.fixture
def no_decoding(monkeypatch):
    """Any frame decoded fails the test."""
    import importlib

    from smolvlm_video import video

    probe = importlib.import_module("smolvlm_video.video.probe")  # the module, not the function `video.probe`

    def fail(*args, **kwargs):
        raise AssertionError("a frame was decoded")

    monkeypatch.setattr(probe, "_first_frame_rotation", fail)
    monkeypatch.setattr(video, "decode_frames", fail)


@requires_ffmpeg
def test_load_media_refuses_huge_frames_before_decoding(huge, no_decoding):
    from smolvlm_video.video.media import load_media

    with pytest.raises(TooLargeError, match=r"16000x16000.*--max-pixels") as raised:
        load_media(huge)
    assert raised.value.code == "too_large"


@requires_ffmpeg
def test_refusing_a_huge_video_costs_no_memory(huge):
    script = f"""
import resource
from smolvlm_video.errors import TooLargeError
from smolvlm_video.video.media import load_media
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_media({str(huge)!r})
except TooLargeError:
    pass
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""
    grown_mb = float(
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    )
    assert grown_mb < 300  # one decoded frame alone is 384 MB


@requires_ffmpeg
def test_a_window_over_the_total_budget_is_refused_before_decoding(monkeypatch):
    from smolvlm_video import video

    monkeypatch.setattr(video, "decode_frames", lambda *a, **k: pytest.fail("a frame was decoded"))
    with pytest.raises(TooLargeError, match="--max-total-pixels"):
        video.sample_video(VIDEO, SamplingOptions(max_total_pixels=100_000))


@requires_ffmpeg
@pytest.mark.slow
def test_caption_records_the_huge_video_as_too_large_and_goes_on(tiny_checkpoint, huge, tmp_path):
    out = tmp_path / "out.jsonl"
    args = ["caption", str(huge), str(VIDEO), "-o", str(out), "--model", str(tiny_checkpoint), "--quiet",
            "--max-new-tokens", "2", "--max-frames", "2"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output  # a clip failed: the run says so
    records = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert records["huge.avi"]["error"]["type"] == "too_large"
    assert "16000x16000" in records["huge.avi"]["error"]["message"]
    assert records["testsrc2.mp4"]["status"] == "ok"


@requires_ffmpeg
@pytest.mark.slow
def test_ask_refuses_the_huge_video_with_exit_2(tiny_checkpoint, huge):
    result = CliRunner().invoke(cli, ["ask", str(huge), "What?", "--model", str(tiny_checkpoint)])
    assert result.exit_code == 2 and "16000x16000" in result.output and "--max-pixels" in result.output
    smaller = ["ask", str(huge), "What?", "--model", str(tiny_checkpoint), "--max-pixels", "1000"]
    assert "at most 1,000" in CliRunner().invoke(cli, smaller).output
