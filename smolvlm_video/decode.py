"""Decode the planned frames of a video, and nothing more, at the model's frame size.

Two backends. PyAV is the default (`auto`): frame threading, the container's keyframe index to
decide when a seek pays off, and scaling right after each frame is decoded. It was as fast as or
faster than decord on every clip of benchmarks/caption_throughput.py and benchmarks/sampling.py
(360p to 1080p, 20% to 35% less CPU on 2-second keyframe intervals), keeps less memory (decord
queues frames at the source resolution: about 480 MB at 1080p) and handles rotation. decord, where
it is installed, is there on request (`backend="decord"`) for H.264/HEVC files it reads well; PyAV
takes over whenever it fails.

Either way only the sampled frames are kept, each already at the frame side, so memory stays near
max_frames x frame side x frame side x 3 bytes whatever the source resolution or length.
Rotation metadata is honoured: a portrait phone video comes out portrait.
"""

from __future__ import annotations

import bisect
import importlib.util
import logging
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import av
import numpy as np

from .errors import CorruptVideoError, OptionsError
from .probe import VideoInfo

logger = logging.getLogger(__name__)

# decord turns rotated videos upright itself at full size, but breaks when it also scales them
# (wrong frames, or a size check that fails), so rotated videos go to PyAV.
NO_INDEX_SEEK_SECONDS = 10.0  # without a keyframe index, seek only past gaps this long
END_SLACK_SECONDS = 1.0  # targets this close to the end may fall past the last real frame


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


def choose_backend(info: VideoInfo, backend: str = "auto") -> str:
    """The backend that `decode` will try first for this video."""
    if backend == "decord" and not decord_available():
        raise OptionsError(
            "The decord backend is not installed here (pip install decord); use 'pyav' or 'auto'.", "backend"
        )
    if backend == "decord" and info.rotation:
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

    `threads` is the decoder's thread count, 0 for one per core: callers that decode several videos
    at once give each decoder its share of the cores, which saves the threading overhead.
    `snap_seconds` lets PyAV take a keyframe near a target instead (see `snap_to_keyframes`).
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
        frames, times, indices = _decode_pyav(info, indices, side, threads, snap_seconds)
    return DecodedFrames(
        frames=frames,
        timestamps=tuple(times),
        indices=tuple(indices),
        backend=first,
        seconds=time.perf_counter() - started,
    )


def upright(frame: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a decoded frame (H, W, 3) by its counter-clockwise display rotation."""
    turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(frame, turns)) if turns else frame


def _coded_size(info: VideoInfo, side: int) -> tuple[int, int]:
    """The scaled size in the decoder's orientation, before rotation."""
    width, height = scaled_size(info.width, info.height, side)
    return (height, width) if info.rotation in (90, 270) else (width, height)


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


def _keyframe_times(stream: Any) -> list[float]:
    """Times (seconds) of the keyframes in the container's index; empty when it has none."""
    time_base = float(stream.time_base)
    return sorted(entry.timestamp * time_base for entry in stream.index_entries if entry.is_keyframe)


def snap_to_keyframes(targets: Sequence[float], keyframes: Sequence[float], limit: float) -> list[float]:
    """Targets moved onto a nearby keyframe where one is close enough, in order and never two on one.

    A keyframe decodes on its own; any other frame needs every frame since the keyframe before it,
    up to a few seconds of video per sampled frame. A target moves at most `limit` seconds and at
    most a third of the gap to each neighbour, so the frames stay spread evenly and distinct, and
    never outside the span of the targets.
    """
    snapped = []
    for i, target in enumerate(targets):
        gaps = [abs(target - targets[j]) for j in (i - 1, i + 1) if 0 <= j < len(targets)]
        reach = min([limit, *(gap / 3 for gap in gaps)])
        after = bisect.bisect_left(keyframes, target)  # keyframes[after - 1] < target <= keyframes[after]
        around = keyframes[max(0, after - 1) : after + 1]
        nearest = min(around, key=lambda key: abs(key - target), default=None)
        inside = nearest is not None and targets[0] <= nearest <= targets[-1]  # the window keeps its span
        snapped.append(nearest if inside and abs(nearest - target) <= reach else target)
    return snapped


def _should_seek(keyframes: list[float], position: float | None, target: float) -> bool:
    """Seek when a keyframe lies between where the decoder is and the target; else decode forward."""
    if position is None:
        return True
    if not keyframes:
        return target - position > NO_INDEX_SEEK_SECONDS
    last_key = bisect.bisect_right(keyframes, target) - 1
    return last_key >= 0 and keyframes[last_key] > position


def _decode_pyav(
    info: VideoInfo, indices: Sequence[int], side: int, threads: int, snap_seconds: float = 0.0
) -> tuple[np.ndarray, list[float], list[int]]:
    width, height = _coded_size(info, side)
    container = av.open(info.path, metadata_errors="ignore")
    try:
        stream = container.streams.video[0]
        stream.thread_type = "NONE" if threads == 1 else "AUTO"
        stream.codec_context.thread_count = threads
        origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        keyframes = _keyframe_times(stream)
        exact = [origin + i / info.fps for i in indices]
        targets = snap_to_keyframes(exact, keyframes, snap_seconds) if snap_seconds else exact
        on_keyframe = [target != wanted for target, wanted in zip(targets, exact, strict=True)]
        picked = [
            (time, upright(_scaled(frame, width, height), info.rotation))
            for time, frame in _pick_frames(container, stream, targets, on_keyframe, keyframes, info, origin)
        ]
    except av.error.FFmpegError as error:
        raise CorruptVideoError(info.path, f"decoding failed: {error}") from error
    finally:
        container.close()
    times = [round(time - origin, 3) for time, _ in picked]
    snapped = [round(time * info.fps) for time in times]  # the frame numbers actually taken
    exact = list(indices[: len(picked)])
    return np.stack([frame for _, frame in picked]), times, exact if not snap_seconds else snapped


def _pick_frames(
    container: Any,
    stream: Any,
    targets: list[float],
    on_keyframe: list[bool],
    keyframes: list[float],
    info: VideoInfo,
    origin: float,
) -> Iterator[tuple[float, av.VideoFrame]]:
    """For each target (stream seconds), the first frame at or after it, within half a frame; for a
    target on a keyframe, the keyframe itself (the index gives decode times, so it is found by seeking).

    A lazy generator: the caller scales each frame before the next one is decoded.
    """
    tolerance = 0.5 / info.fps
    frames: Iterator[av.VideoFrame] = iter(())
    position: float | None = None
    for target, keyframe in zip(targets, on_keyframe, strict=True):
        if keyframe or _should_seek(keyframes, position, target):
            seek_at = _inside_gop(keyframes, target) if keyframe else target
            container.seek(int(seek_at / stream.time_base), stream=stream, backward=True)
            frames = container.decode(stream)
        wanted = -math.inf if keyframe else target - tolerance
        frame = next((f for f in frames if f.time is not None and f.time >= wanted), None)
        if frame is None:
            _check_ended_near(info, target - origin, position)
            return
        position = float(frame.time)
        yield position, frame


def _inside_gop(keyframes: list[float], keyframe: float) -> float:
    """A time between a keyframe and the next: a backward seek there lands on that keyframe whether
    the demuxer reads its index by decode or by presentation time (they differ by the B-frame delay)."""
    following = bisect.bisect_right(keyframes, keyframe)
    next_key = keyframes[following] if following < len(keyframes) else keyframe + 1.0
    return (keyframe + next_key) / 2


def _scaled(frame: av.VideoFrame, width: int, height: int) -> np.ndarray:
    return frame.to_ndarray(width=width, height=height, format="rgb24", interpolation="AREA")


def _check_ended_near(info: VideoInfo, target: float, position: float | None) -> None:
    if position is None or target < info.duration - END_SLACK_SECONDS:
        raise CorruptVideoError(
            info.path, f"the video stream ends before {target:.1f} s of {info.duration:.1f} s (truncated?)"
        )
