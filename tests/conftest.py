"""Fixtures: small videos made with ffmpeg, and the tiny offline checkpoint."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

FFMPEG = shutil.which("ffmpeg")
requires_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed")


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG or "ffmpeg", "-v", "error", "-y", *args], check=True)


def testsrc(size: str = "160x120", rate: int = 25, seconds: float = 3) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]


H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def make_video(media_dir: Path) -> Callable[..., Path]:
    """make_video(name, size=..., rate=..., seconds=..., extra=[...]) -> an H.264 file, made once."""

    def make(
        name: str = "clip.mp4",
        size: str = "160x120",
        rate: int = 25,
        seconds: float = 3,
        extra: tuple[str, ...] = (),
        codec: tuple[str, ...] = tuple(H264),
    ) -> Path:
        path = media_dir / name
        if not path.exists():
            ffmpeg(*testsrc(size, rate, seconds), *codec, *extra, str(path))
        return path

    return make


@pytest.fixture(scope="session")
def clip(make_video: Callable[..., Path]) -> Path:
    return make_video("clip.mp4")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from smolvlm_video.testing import build_checkpoint

    return build_checkpoint(tmp_path_factory.mktemp("tiny-smolvlm"), "tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_checkpoint: Path):
    from smolvlm_video.model.loading import load_model

    return load_model(str(tiny_checkpoint), device="cpu")
