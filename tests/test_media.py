"""Images and videos told apart by content, with clear errors for what cannot be used."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import requires_ffmpeg
from PIL import Image

from smolvlm_video import SampledVideo
from smolvlm_video.errors import ImageError, NotAVideoError
from smolvlm_video.video.media import is_image, load_image, load_media


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 60, 4), 200, dtype=np.uint8), "RGBA").save(path)
    return path


def test_image_is_read_whole_and_in_rgb(png):
    image = load_image(png)
    assert image.mode == "RGB" and image.size == (60, 40)


def test_an_image_renamed_mp4_is_still_an_image(png, tmp_path):
    renamed = tmp_path / "not really.mp4"
    shutil.copy(png, renamed)
    assert is_image(renamed) and isinstance(load_media(renamed), Image.Image)


@requires_ffmpeg
def test_a_video_is_sampled(clip):
    assert not is_image(clip) and isinstance(load_media(clip), SampledVideo)


def test_text_is_neither(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    with pytest.raises(ImageError, match="not an image"):
        load_image(text)
    with pytest.raises(NotAVideoError):
        load_media(text)


def test_truncated_image_is_a_clear_error(png, tmp_path):
    truncated = tmp_path / "half.png"
    truncated.write_bytes(png.read_bytes()[:80])
    with pytest.raises(ImageError, match="damaged or truncated") as caught:
        load_image(truncated)
    assert caught.value.code == "bad_image" and str(truncated) in str(caught.value)


def test_missing_image(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "gone.png")
