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
from av.video.frame import PictureType

from .errors import CorruptVideoError, OptionsError
from .probe import VideoInfo

logger = logging.getLogger(__name__)

# decord turns rotated videos upright itself at full size, but breaks when it also scales them
# (wrong frames, or a size check that fails), so rotated videos go to PyAV.
NO_INDEX_SEEK_SECONDS = 10.0  # without a keyframe index, seek only past gaps this long
END_SLACK_SECONDS = 1.0  # targets this close to the end may fall past the last real frame
BIDIRECTIONAL = int(PictureType.B)  # a B frame: needs a later frame decoded before it


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
    for target, reach in zip(targets, reaches(targets, limit), strict=True):
        after = bisect.bisect_left(keyframes, target)  # keyframes[after - 1] < target <= keyframes[after]
        around = keyframes[max(0, after - 1) : after + 1]
        nearest = min(around, key=lambda key: abs(key - target), default=None)
        inside = nearest is not None and targets[0] <= nearest <= targets[-1]  # the window keeps its span
        snapped.append(nearest if inside and abs(nearest - target) <= reach else target)
    return snapped


def reaches(targets: Sequence[float], limit: float) -> list[float]:
    """How far each target may move: `limit`, and at most a third of the gap to each neighbour."""
    return [
        min([limit, *(abs(target - targets[j]) / 3 for j in (i - 1, i + 1) if 0 <= j < len(targets))])
        for i, target in enumerate(targets)
    ]


@dataclass(frozen=True)
class Target:
    """A frame to pick, in stream seconds."""

    time: float
    reach: float = 0.0  # it may move this far onto a reference frame; 0: the exact frame
    keyframe: bool = False  # snapped onto a keyframe: seek straight to it


def plan_targets(exact: Sequence[float], keyframes: Sequence[float], snap_seconds: float) -> list[Target]:
    """The frames to pick: exact ones, or (snap_seconds > 0) moved onto keyframes, else free to move
    onto a reference frame within their reach.

    The first and the last frame move only onto a keyframe inside the span, never out of it: a window
    that follows a shot must not show a frame of the shot before or after it.
    """
    if not snap_seconds:
        return [Target(time) for time in exact]
    limits = reaches(exact, snap_seconds)
    limits = [0.0 if i in (0, len(exact) - 1) else limit for i, limit in enumerate(limits)]
    snapped = snap_to_keyframes(exact, keyframes, snap_seconds)
    return [
        Target(new, 0.0, True) if new != old else Target(old, reach)
        for old, new, reach in zip(exact, snapped, limits, strict=True)
    ]


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
        targets = plan_targets([origin + i / info.fps for i in indices], keyframes, snap_seconds)
        picker = _Picker(container, stream, keyframes, info, origin)
        picked = [
            (time, upright(_scaled(frame, width, height), info.rotation))
            for time, frame in picker.pick(targets)
        ]
    except av.error.FFmpegError as error:
        raise CorruptVideoError(info.path, f"decoding failed: {error}") from error
    finally:
        container.close()
    times = [round(time - origin, 3) for time, _ in picked]
    snapped = [round(time * info.fps) for time in times]  # the frame numbers actually taken
    exact = list(indices[: len(picked)])
    return np.stack([frame for _, frame in picked]), times, exact if not snap_seconds else snapped


class _Picker:
    """Finds each target's frame with as little decoding as it can.

    The decoder skips every non-reference frame (FFmpeg's skip_frame NONREF) except where an exact
    target may lie: no other frame is decoded from them, so skipping them changes no pixel of the
    frames that are decoded, and the exact targets come out as they are. A target free to move
    (`reach`) takes the I or P frame nearest to it: it costs nothing more than the scan, where an
    exact B frame needs its later reference decoded first. A target on a keyframe is sought directly.
    """

    def __init__(self, container: Any, stream: Any, keyframes: list[float], info: VideoInfo, origin: float):
        self.container, self.stream, self.keyframes, self.info = container, stream, keyframes, info
        self.origin = origin
        self.tolerance = 0.5 / info.fps  # half a frame: a frame's time may be off by rounding
        self.span = 0.9 / info.fps  # an exact target's frame comes before the next one: jitter, no more
        self.exact: list[float] = []  # times of the exact targets, sorted: only there is every frame decoded
        self.frames = _Lookahead(iter(()))
        self.position: float | None = None  # time of the last frame picked

    def pick(self, targets: list[Target]) -> Iterator[tuple[float, av.VideoFrame]]:
        """(time, frame) per target, in order; stops early only near the end of the stream.

        A lazy generator: the caller scales each frame before the next one is decoded.
        """
        self.exact = sorted(target.time for target in targets if not target.reach and not target.keyframe)
        for target in targets:
            frame = self._pick(target)
            if frame is None:
                _check_ended_near(self.info, target.time - self.origin, self.position)
                return
            self.position = float(frame.time)
            yield self.position, frame

    def _pick(self, target: Target) -> av.VideoFrame | None:
        if target.keyframe:
            self._seek(_inside_gop(self.keyframes, target.time))
            return self._first_from(-math.inf)
        # Seek to the target itself: a keyframe within its reach would have been snapped onto, and the
        # index may give a keyframe's decode time, a little before the frame, so a seek to the start of
        # the reach could land a whole keyframe interval early.
        if _should_seek(self.keyframes, self.position, target.time):
            self._seek(target.time)
        if target.reach:
            frame = self._nearest(target)
            if frame is not None:
                return frame
            # No reference frame within reach: the exact frame after all.
            bisect.insort(self.exact, target.time)
            self._seek(target.time)
        return self._first_from(target.time - self.tolerance)

    def _seek(self, time: float) -> None:
        self.container.seek(int(time / self.stream.time_base), stream=self.stream, backward=True)
        self.frames = _Lookahead(self._decoded())

    def _decoded(self) -> Iterator[av.VideoFrame]:
        """The stream's frames from where it was sought, without the non-reference ones no target needs."""
        context, time_base = self.stream.codec_context, float(self.stream.time_base)
        for packet in self.container.demux(self.stream):
            needed = packet.pts is None or self._near_exact(packet.pts * time_base)
            context.skip_frame = "DEFAULT" if needed else "NONREF"
            yield from packet.decode()

    def _near_exact(self, time: float) -> bool:
        """Whether a frame at `time` may be an exact target's: half a frame before one to nearly a frame past.

        Every exact target counts, not only the next: with frame threading and B-frames the decoder
        takes packets a few frames ahead of the frame it gives back.
        """
        before = bisect.bisect_right(self.exact, time + self.tolerance) - 1
        return before >= 0 and time <= self.exact[before] + self.span

    def _first_from(self, time: float) -> av.VideoFrame | None:
        while (frame := self.frames.pop()) is not None:
            if frame.time is not None and frame.time >= time:
                return frame
        return None

    def _nearest(self, target: Target) -> av.VideoFrame | None:
        """The I or P frame nearest the target within its reach; a frame past it waits for the next target."""
        low, high = target.time - target.reach, target.time + target.reach
        best: av.VideoFrame | None = None
        while (frame := self.frames.peek()) is not None:
            if frame.time is not None and (frame.time > high or _nearer(best, frame, target.time)):
                break  # past the reach, or farther than the best already found: no later frame is nearer
            self.frames.pop()
            if frame.time is None or frame.time < low or frame.pict_type == BIDIRECTIONAL:
                continue  # a B frame (a B-pyramid's reference, or next to an exact target) is never taken
            if best is None or abs(frame.time - target.time) < abs(best.time - target.time):
                best = frame
        return best


def _nearer(best: av.VideoFrame | None, frame: av.VideoFrame, time: float) -> bool:
    """Whether `best` is nearer to `time` than `frame`, which comes after it."""
    return best is not None and abs(best.time - time) <= frame.time - time


class _Lookahead:
    """An iterator of frames with one frame of look-ahead."""

    def __init__(self, frames: Iterator[av.VideoFrame]) -> None:
        self._frames = frames
        self._next: av.VideoFrame | None = None

    def peek(self) -> av.VideoFrame | None:
        if self._next is None:
            self._next = next(self._frames, None)
        return self._next

    def pop(self) -> av.VideoFrame | None:
        frame = self.peek()
        self._next = None
        return frame


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
