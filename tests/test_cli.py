"""The smolvlm-video command: --version, info, errors; and what the installed wheel contains."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import requires_ffmpeg
from smolvlm_video.cli.main import cli

from smolvlm_video import __version__

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_info_without_a_video_says_what_the_model_runs_on_and_why():
    result = run("info")
    assert result.exit_code == 0, result.output
    assert "model runs on" in result.output and "device cpu" in result.output
    report = json.loads(run("info", "--json").output)["model_device"]
    assert report["device"] == "cpu" and report["dtype"] in ("bfloat16", "float32")
    assert len(report["why"]) == 6 and report["compile"] is False  # a reason for each choice


@requires_ffmpeg
def test_info_tables(clip):
    result = run("info", str(clip))
    assert result.exit_code == 0, result.output
    assert "160x120" in result.output and "00:00, 00:01, 00:02" in result.output


@requires_ffmpeg
def test_info_json_with_decode(clip):
    result = run("info", str(clip), "--json", "--decode", "--frame-side", "64")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["video"]["frame_count"] == 75
    (window,) = report["windows"]
    assert window["decoded"]["shape"] == [3, 48, 64, 3]
    assert window["decoded"]["backend"] in ("decord", "pyav")


@requires_ffmpeg
def test_info_save_frames(clip, tmp_path):
    result = run("info", str(clip), "--save-frames", str(tmp_path / "frames"), "--max-frames", "2")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert names == ["window00_00000.000s.jpg", "window00_00002.960s.jpg"]


def test_info_missing_file_is_a_clean_error(tmp_path):
    result = run("info", str(tmp_path / "nope.mp4"))
    assert result.exit_code == 1
    assert "nope.mp4: no such file" in result.output and "Traceback" not in result.output


def test_info_bad_option_is_a_usage_error_naming_the_flag(tmp_path):
    result = run("info", str(tmp_path / "x.mp4"), "--fps", "0")
    assert (
        result.exit_code == 2 and "--fps" in result.output and "fps must be a number above 0" in result.output
    )


def test_python_dash_m():
    result = subprocess.run([sys.executable, "-m", "smolvlm_video", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "info" in result.stdout


@pytest.mark.slow
def test_wheel_installs_cli_under_the_package(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("smolvlm_video-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "smolvlm_video/cli/main.py" in names
    assert not [n for n in names if n.startswith(("cli/", "demo/", "tests/"))]


def test_every_command_takes_typed_arguments():
    """Each command's callback, as written, has a typed signature: no **params, no dict of loose options."""
    import inspect
    import typing

    for name, command in cli.commands.items():
        callback = inspect.unwrap(command.callback)
        hints = typing.get_type_hints(callback)
        for parameter in inspect.signature(callback).parameters.values():
            assert parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, (name, parameter)
            hint = hints[parameter.name]  # every parameter has a type
            loose = (
                typing.get_origin(hint) in (dict, typing.Mapping) and typing.get_args(hint)[1] is typing.Any
            )
            assert hint not in (dict, typing.Any) and not loose, (name, parameter.name, hint)


def test_a_flag_an_error_names_comes_from_the_commands_own_parameters(tmp_path):
    video = tmp_path / "x.mp4"
    video.write_bytes(b"")
    result = run("caption", str(video), "--attn", "sdpa", "--model", "", "-o", str(tmp_path / "o.jsonl"))
    assert result.exit_code == 2 and "'--model'" in result.output, result.output
    (tmp_path / "prompts.json").write_text("[]")
    result = run("caption", str(video), "--prompt-file", str(tmp_path / "prompts.json"))
    assert result.exit_code == 2 and "'--prompt-file'" in result.output, result.output
    result = run("caption", str(video), "--prompt", "Hi", "--prompt-file", str(tmp_path / "prompts.json"))
    assert result.exit_code == 2 and "not both" in result.output, result.output
    result = run("caption", str(video), "--engine", "nowhere")
    assert result.exit_code == 2 and "'--engine'" in result.output and "local, ray" in result.output
    result = run("caption", str(video), "--engine-option", "speed=9")
    assert result.exit_code == 2 and "has no option 'speed': it takes none" in result.output, result.output
