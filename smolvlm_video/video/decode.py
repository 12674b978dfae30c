"""Decode the planned frames of a video, and nothing more, at the model's frame size.

Two backends. PyAV is the default (`auto`; see `pyav_decoder`): the container's keyframe index decides
when a seek pays off, the keyframe intervals that hold frames to take are shared out to one
single-threaded decoder per core (FFmpeg's frame threading where there is a single interval), and each
frame is scaled right after it is decoded. It was as fast as or faster than decord on every clip of
benchmarks/caption_throughput.py and benchmarks/sampling.py (360p to 1080p, 20% to 35% less CPU on
2-second keyframe intervals), keeps less memory (decord queues frames at the source resolution: about
480 MB at 1080p) and handles rotation. decord, where it is installed, is there on request
(`backend="decord"`) for H.264/HEVC files it reads well; PyAV takes over whenever it fails.

Either way only the sampled frames are kept, each already at the frame side, so memory stays near
max_frames x frame side x frame side x 3 bytes whatever the source resolution or length.
Rotation metadata is honoured: a portrait phone video comes out portrait.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import CorruptVideoError, OptionsError
from .probe import VideoInfo, turned
from .pyav_decoder import decode_pyav

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecodedFrames:
    """Frames as uint8 RGB, shape (N, height, width, 3), with their times in seconds."""

    frames: np.ndarray
    timestamps: tuple[float, ...]
    indices: tuple[int, ...]
    backend: str
    seconds: float  # wall time spent decoding


def decord_available() -> bool:
    """Whether the decord package can be imported here."""
    return importlib.util.find_spec("decord") is not None


def scaled_size(width: int, height: int, side: int) -> tuple[int, int]:
    """(width, height) with the longest edge at `side` and the other kept in proportion, rounded up to even.

    The same arithmetic as the SmolVLM video processor's first resize, so it leaves our frames as they are.
    """
    aspect = width / height
    if width >= height:
        width, height = side, int(side / aspect)
        height += height % 2
    else:
        width, height = int(side * aspect), side
        width += width % 2
    return max(width, 1), max(height, 1)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def choose_backend(info: VideoInfo, backend: str = "auto") -> str:
    """The backend that `decode` will try first for this video."""
    if backend == "decord" and not decord_available():
        raise OptionsError(
            "The decord backend is not installed here (pip install decord); use 'pyav' or 'auto'.", "backend"
        )
    if backend == "decord" and info.rotation:
        # decord turns rotated videos upright itself at full size, but breaks when it also scales them
        # (wrong frames, or a size check that fails).
        return "pyav"
    return "pyav" if backend == "auto" else backend


def decode(
    info: VideoInfo,
    indices: Sequence[int],
    side: int,
    backend: str = "auto",
    threads: int = 0,
    snap_seconds: float = 0.0,
) -> DecodedFrames:
    """Decode the frames at `indices`, scaled so their longest edge is `side`, turned upright.

    `threads` is how many cores the decoding may use, 0 for all: callers that decode several videos
    at once give each its share of the cores, which saves the threading overhead.
    `snap_seconds` lets PyAV take a keyframe near a target instead (see `targets.snap_to_keyframes`).
    """
    first = choose_backend(info, backend)
    started = time.perf_counter()
    if first == "decord":
        try:
            frames, times = _decode_decord(info, indices, side, threads)
        except (CorruptVideoError, OptionsError):
            raise
        except Exception as error:  # decord raises its own untyped errors; PyAV gets a second try
            logger.warning("decord failed on %s (%s); decoding with PyAV instead", info.path, error)
            first = "pyav"
    if first == "pyav":
        size, cores = _coded_size(info, side), threads or usable_cores()
        frames, times, indices = decode_pyav(info, indices, size, cores, snap_seconds)
    return DecodedFrames(
        frames=frames,
        timestamps=tuple(times),
        indices=tuple(indices),
        backend=first,
        seconds=time.perf_counter() - started,
    )


def _coded_size(info: VideoInfo, side: int) -> tuple[int, int]:
    """The scaled size in the decoder's orientation, before rotation."""
    return turned(*scaled_size(info.width, info.height, side), info.rotation)


def _decode_decord(
    info: VideoInfo, indices: Sequence[int], side: int, threads: int
) -> tuple[np.ndarray, list[float]]:
    import decord

    width, height = scaled_size(info.width, info.height, side)
    reader = decord.VideoReader(info.path, ctx=decord.cpu(0), width=width, height=height, num_threads=threads)
    try:
        available = len(reader)
        if indices[-1] >= available:
            raise RuntimeError(f"decord sees {available} frames, the plan needs frame {indices[-1]}")
        batch = reader.get_batch(list(indices)).asnumpy()
        times = reader.get_frame_timestamp(list(indices))[:, 0]
    finally:
        del reader
    return batch, [round(float(t), 3) for t in times]
