"""Open what a person hands over, an image or a video, told apart by its content, not its name.

>>> from smolvlm_video.video.media import load_media
>>> load_media("holiday.jpg")          # a PIL image, RGB
>>> load_media("holiday.mp4", options) # a SampledVideo: the first window's frames
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..errors import ImageError
from ..options import SamplingOptions
from . import SampledVideo, sample_video

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
MAX_IMAGE_PIXELS = 100_000_000  # larger images are refused rather than decoded (decompression bombs)

Media = Image.Image | SampledVideo


def is_image(path: str | os.PathLike[str]) -> bool:
    """Whether the file's content is an image Pillow can read (whatever its extension says)."""
    try:
        with Image.open(path) as image:
            return image.format is not None
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return False


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """The image at `path`, fully read and converted to RGB (the first frame of an animated GIF)."""
    if not Path(path).is_file():
        raise ImageError(path, "no such file.")
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise ImageError(
                    path, f"{image.width}x{image.height} is too large; at most {MAX_IMAGE_PIXELS:,} pixels."
                )
            return image.convert("RGB")
    except UnidentifiedImageError as error:
        raise ImageError(
            path, f"not an image Pillow can read; use one of {', '.join(IMAGE_EXTENSIONS)}."
        ) from error
    except (OSError, Image.DecompressionBombError) as error:
        raise ImageError(path, f"the image is damaged or truncated ({error}).") from error


def load_media(path: str | os.PathLike[str], sampling: SamplingOptions | None = None) -> Media:
    """An image if the file holds one, else the sampled video (its first window; see `sample_video`)."""
    return load_image(path) if is_image(path) else sample_video(path, sampling)
