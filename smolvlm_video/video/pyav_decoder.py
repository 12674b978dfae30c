"""Decode the targets of a video with PyAV: as little as the frames taken depend on, on every core.

The container's keyframe index says where each target's keyframe interval starts; the intervals that
hold targets go to one single-threaded decoder (a lane) per core, each with its own container, taking
the next interval free; within an interval the picker skips every frame no target needs and scales each
frame taken right after it is decoded. See `decode.decode` for the entry point.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import av
import numpy as np
from av.video.frame import PictureType
from av.video.reformatter import VideoReformatter

from ..errors import CorruptVideoError
from .probe import VideoInfo, stream_origin
from .targets import Target, keyframe_groups, plan_targets

logger = logging.getLogger(__name__)

NO_INDEX_SEEK_SECONDS = 10.0  # without a keyframe index, seek only past gaps this long
END_SLACK_SECONDS = 1.0  # targets this close to the end may fall past the last real frame
BIDIRECTIONAL = int(PictureType.B)  # a B frame: needs a later frame decoded before it


def upright(frame: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a decoded frame (H, W, 3) by its counter-clockwise display rotation."""
    turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(frame, turns)) if turns else frame


def keyframe_times(container: Any, stream: Any) -> list[float]:
    """Presentation times (seconds) of the keyframes in the container's index; empty when it has none.

    Matroska and WebM read their index (cues) on the first seek, so this seeks to the start first.
    MP4 indexes decode times, which run ahead of presentation by the B-frame delay, so each is moved
    by the first packet's delay: a frame shown just before a keyframe belongs to the interval before
    it, and a seek to it lands there. Reads the first packet: seek before decoding.
    """
    try:
        container.seek(0, stream=stream, backward=True)
    except av.error.FFmpegError as error:  # a stream that cannot seek: the index as it is, if any
        logger.debug("cannot seek %s to read its index: %s", container.name, error)
    time_base = float(stream.time_base)
    times = sorted(entry.timestamp * time_base for entry in stream.index_entries if entry.is_keyframe)
    first = next(container.demux(stream), None) if times else None
    known = first is not None and first.is_keyframe and first.pts is not None and first.dts is not None
    delay = float((first.pts - first.dts) * time_base) if known else 0.0
    return [time + delay for time in times]


def _should_seek(keyframes: list[float], position: float | None, target: float, tolerance: float) -> bool:
    """Seek when a keyframe lies between where the decoder is and the target; else decode forward.

    A keyframe within `tolerance` of the position is the frame just taken: its index time and the
    frame's own may differ by rounding.
    """
    if position is None:
        return True
    if not keyframes:
        return target - position > NO_INDEX_SEEK_SECONDS
    last_key = bisect.bisect_right(keyframes, target) - 1
    return last_key >= 0 and keyframes[last_key] > position + tolerance


def decode_pyav(
    info: VideoInfo, indices: Sequence[int], size: tuple[int, int], cores: int, snap_seconds: float = 0.0
) -> tuple[np.ndarray, list[float], list[int]]:
    """The frames at `indices` (or near them, with `snap_seconds`) at `size` (the decoder's orientation),
    upright, on `cores` cores; their times, and the frame numbers actually taken."""
    with _Lane(info, size) as first:
        targets = plan_targets([first.origin + i / info.fps for i in indices], first.keyframes, snap_seconds)
        groups = keyframe_groups(targets, first.keyframes)
        lanes = min(cores, len(groups))
        first.start(targets, threads=1 if lanes > 1 else cores)
        picked = _pick_in_lanes(first, lanes, targets, groups)
    if not picked:
        raise CorruptVideoError(info.path, "no frame of the video stream could be decoded")
    times = [round(time - first.origin, 3) for time, _ in picked]
    snapped = [round(time * info.fps) for time in times]  # the frame numbers actually taken
    exact = list(indices[: len(picked)])
    return np.stack([frame for _, frame in picked]), times, exact if not snap_seconds else snapped


Picked = list[tuple[float, np.ndarray]]  # (stream time, frame at the frame side, upright) per target


def _pick_in_lanes(first: _Lane, lanes: int, targets: list[Target], groups: list[list[Target]]) -> Picked:
    """Every group's frames, the groups shared out to `lanes` decoders that each take the next one free.

    Each lane has its own container and a one-thread decoder: groups of different keyframe intervals
    decode in parallel, which keeps every core busy where one frame-threaded decoder waits on the chain
    of reference frames. The frames come back in order, up to where the stream ended.
    """
    results: list[Picked | None] = [None] * len(groups)
    queue, lock, failed = iter(range(len(groups))), threading.Lock(), threading.Event()

    def work(lane: _Lane) -> None:
        while not failed.is_set():
            with lock:
                index = next(queue, None)
            if index is None:
                return
            try:
                results[index] = lane.pick(groups[index])
            except BaseException:
                failed.set()
                raise

    def other_lane() -> None:
        with _Lane(first.info, first.size, first) as lane:
            lane.start(targets, threads=1)
            work(lane)

    if lanes == 1:
        work(first)
    else:
        with ThreadPoolExecutor(lanes - 1, thread_name_prefix="smolvlm-lane") as pool:
            others = [pool.submit(other_lane) for _ in range(lanes - 1)]
            work(first)
            for other in others:
                other.result()
    picked: Picked = []
    for group, result in zip(groups, results, strict=True):
        picked.extend(result or [])
        if result is None or len(result) < len(group):
            break  # the stream ended: later groups have nothing either
    return picked


class _Lane:
    """One container and its decoder, picking the frames of the groups it is given."""

    def __init__(self, info: VideoInfo, size: tuple[int, int], first: _Lane | None = None) -> None:
        """Open the video; a lane after the `first` takes its keyframes instead of reading them again."""
        self.info, self.size = info, size
        self.container = av.open(info.path, metadata_errors="ignore")
        try:
            self.stream = stream = self.container.streams.video[0]
            self.origin = stream_origin(stream)
            self.keyframes = first.keyframes if first else keyframe_times(self.container, stream)
        except av.error.FFmpegError as error:
            self.container.close()
            raise CorruptVideoError(info.path, f"reading the video stream failed: {error}") from error
        self.picker: _Picker | None = None
        self.scaler = VideoReformatter()  # a lane's frames are all scaled on its one thread

    def __enter__(self) -> _Lane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.container.close()

    def start(self, targets: list[Target], threads: int) -> None:
        """Set the decoder's threads (before its first packet) and the targets it may meet."""
        self.stream.thread_type = "NONE" if threads == 1 else "AUTO"
        self.stream.codec_context.thread_count = threads
        self.picker = _Picker(self, targets)

    def pick(self, group: list[Target]) -> Picked:
        """The group's frames, scaled and upright; fewer only where the stream ends near its end."""
        assert self.picker is not None, "start() the lane first"
        width, height = self.size
        try:
            return [
                (time, upright(_scaled(frame, width, height, self.scaler), self.info.rotation))
                for time, frame in self.picker.pick(group)
            ]
        except av.error.FFmpegError as error:
            raise CorruptVideoError(self.info.path, f"decoding failed: {error}") from error


class _Picker:
    """Finds each target's frame with as little decoding as it can.

    The decoder skips every non-reference frame (FFmpeg's skip_frame NONREF) except where an exact
    target may lie: no other frame is decoded from them, so skipping them changes no pixel of the
    frames that are decoded, and the exact targets come out as they are. A target free to move
    (`reach`) takes the I or P frame nearest to it: it costs nothing more than the scan, where an
    exact B frame needs its later reference decoded first. A target on a keyframe is sought directly.
    """

    def __init__(self, lane: _Lane, targets: list[Target]) -> None:
        self.container, self.stream, self.info = lane.container, lane.stream, lane.info
        self.keyframes, self.origin = lane.keyframes, lane.origin
        self.tolerance = 0.5 / self.info.fps  # half a frame: a frame's time may be off by rounding
        self.span = 0.9 / self.info.fps  # an exact target's frame comes before the next one: jitter, no more
        # Times of every exact target, sorted: only there is every frame decoded.
        self.exact = sorted(target.time for target in targets if not target.reach and not target.keyframe)
        self.frames = _Lookahead(iter(()))
        self.position: float | None = None  # time of the last frame picked

    def pick(self, targets: list[Target]) -> Iterator[tuple[float, av.VideoFrame]]:
        """(time, frame) per target, in order; stops early only near the end of the stream.

        A lazy generator: the caller scales each frame before the next one is decoded.
        """
        for target in targets:
            frame = self._pick(target)
            if frame is None:
                _check_ended_near(self.info, target.time - self.origin)
                return
            self.position = float(frame.time)
            yield self.position, frame

    def _pick(self, target: Target) -> av.VideoFrame | None:
        if target.keyframe:
            self._seek(_inside_gop(self.keyframes, target.time))
            return self._first_from(-math.inf)
        # Seek to the target itself, not to the start of its reach: a keyframe within its reach would
        # have been snapped onto.
        if _should_seek(self.keyframes, self.position, target.time, self.tolerance):
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


def _scaled(
    frame: av.VideoFrame, width: int, height: int, scaler: VideoReformatter | None = None
) -> np.ndarray:
    """The frame as RGB at (width, height), area-averaged. Give each thread one `scaler` for all its
    frames: a new one per frame spends as long again setting itself up."""
    scaled = (scaler or VideoReformatter()).reformat(
        frame, width=width, height=height, format="rgb24", interpolation="AREA"
    )
    return scaled.to_ndarray()


def _check_ended_near(info: VideoInfo, target: float) -> None:
    if target < info.duration - END_SLACK_SECONDS:
        raise CorruptVideoError(
            info.path, f"the video stream ends before {target:.1f} s of {info.duration:.1f} s (truncated?)"
        )
