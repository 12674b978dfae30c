"""Files a request shows the person: the frames the model saw, thumbnails, downloads.

Each request writes into a folder of its own under Gradio's upload folder. The folders of requests
still being answered are held and never pruned, however many requests run at once; of the others,
the newest `keep` stay, so a page can still load what it was shown a moment ago.
"""

from __future__ import annotations

import base64
import contextlib
import io
import itertools
import math
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from smolvlm_video.model.prompts import clock
from smolvlm_video.video import SampledVideo

Gallery = list[tuple[str, str]]  # (path, caption) per frame, as gr.Gallery takes them


class RequestFolders:
    """A new folder per request, kept while the request holds it, then among the newest `keep`."""

    def __init__(self, root: Path, keep: int = 64) -> None:
        self.root = root
        self.keep = max(1, keep)
        self._lock = threading.Lock()
        # Released folders, oldest first (those left by an earlier run of the app count too). A folder
        # joins them only when its request ends, so the folders of requests in flight are never pruned.
        earlier = root.iterdir() if root.is_dir() else iter(())
        self._released = sorted((f for f in earlier if f.is_dir()), key=lambda f: f.stat().st_mtime)

    @contextlib.contextmanager
    def hold(self) -> Iterator[Path]:
        """A new, empty folder that no other request's pruning removes until this context ends."""
        self.root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=self.root))
        try:
            yield folder
        finally:
            with self._lock:
                self._released.append(folder)
                stale, self._released = self._released[: -self.keep], self._released[-self.keep :]
            for old in stale:
                shutil.rmtree(old, ignore_errors=True)


def save_frames(folder: Path, media: Sequence[Any]) -> Gallery:
    """Each frame or image as a JPEG in `folder`: (path, caption) in prompt order, for the gallery.

    The gallery gets file paths, so each frame is encoded once per request, not once per streamed token.
    """
    gallery: Gallery = []
    for item in media:
        video = isinstance(item, SampledVideo)
        frames = zip(item.frames, frame_labels(item.timestamps), strict=True) if video else [(item, "image")]
        for frame, label in frames:
            path = folder / f"{len(gallery):03d}.jpg"
            _image(frame).convert("RGB").save(path, quality=85)
            gallery.append((str(path), label))
    return gallery


def frame_labels(times: Sequence[float]) -> list[str]:
    """Each frame's time, MM:SS as the model's markers write it; with tenths (MM:SS.s), or hundredths, where
    frames are closer than a second, so that no two labels are the same."""
    gaps = [b - a for a, b in itertools.pairwise(times)]
    if not gaps or min(gaps) >= 1:
        return [clock(time) for time in times]
    digits = 1 if min(gaps) >= 0.1 else 2
    scale = 10**digits
    return [
        f"{clock(time)}.{math.floor(time * scale + 1e-6) % scale:0{digits}d}" for time in times
    ]  # floored as clock() is, so 2.96 s is 00:02.9, never 00:03.0 beside an 00:03


THUMBNAIL_WIDTH = 160


def thumbnail_uri(frame: np.ndarray | Image.Image, width: int = THUMBNAIL_WIDTH) -> str:
    """A small JPEG of a frame as a data: URI, so a page shows it without a file on the server."""
    image = _image(frame).convert("RGB")
    image.thumbnail((width, width * 4), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _image(frame: np.ndarray | Image.Image) -> Image.Image:
    return Image.fromarray(frame) if isinstance(frame, np.ndarray) else frame
