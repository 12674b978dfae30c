"""Which frames to take: the arithmetic of windows, frame counts and frame indices.

Pure functions of a video's facts and the sampling options; nothing here opens a file. The rules
follow the SmolVLM2 checkpoints' own processor:

- one prompt covers at most 210 s of video (3.5 minutes, the length the models were trained on);
  a longer span is split into the fewest consecutive windows of equal length that fit;
- a window gets min(round(fps x window seconds), max_frames) frames, at least 1, and never more
  than the frames it holds;
- the frames are spread evenly over the window (numpy linspace, as the processor does); when the
  window has room to spare, 1 s is left out at the very start and the very end of the video, where
  fades and black frames live.

With shots (`--split scenes`), each shot is a window: a shot shorter than min_scene_seconds joins the
next one (the last joins the one before), and a shot longer than a window is split as above.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import OptionsError
from ..options import MAX_WINDOW_SECONDS, SamplingOptions
from .probe import VideoInfo

if TYPE_CHECKING:
    from .scenes import Shot

EDGE_SKIP_SECONDS = 1.0  # left out at the start and the end of a video when there is room
_EPSILON = 1e-9


@dataclass(frozen=True)
class Window:
    """A span of a video covered by one prompt, in seconds from the start of the video."""

    index: int
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class FramePlan:
    """The frames to decode for one window: indices into the video stream and their times."""

    window: Window
    indices: tuple[int, ...]
    timestamps: tuple[float, ...]  # seconds; index / average fps (the decoder reports exact ones)


def windows(
    duration: float, max_seconds: float = MAX_WINDOW_SECONDS, start: float = 0.0, end: float | None = None
) -> list[Window]:
    """Split [start, end) of a video into the fewest consecutive equal windows of at most max_seconds."""
    end = duration if end is None else min(end, duration)
    if start >= end:
        raise OptionsError(
            f"The window starts at {start:g} s, past the end of the video ({duration:g} s).", "start"
        )
    count = max(1, math.ceil((end - start) / max_seconds - _EPSILON))
    step = (end - start) / count
    bounds = [start + step * i for i in range(count)] + [end]
    return [Window(i, bounds[i], bounds[i + 1]) for i in range(count)]


def shot_windows(shots: Sequence[Shot], max_seconds: float, min_seconds: float) -> list[Window]:
    """One window per shot, short shots joined to the next, long ones split into equal windows."""
    spans: list[list[float]] = []
    pending: float | None = None  # the start of short shots waiting to join the next one
    for shot in shots:
        start = shot.start if pending is None else pending
        if shot.end - start < min_seconds:
            pending = start
            continue
        spans.append([start, shot.end])
        pending = None
    if pending is not None:  # short shots at the very end join the last shot, or are all there is
        if spans:
            spans[-1][1] = shots[-1].end
        else:
            spans.append([pending, shots[-1].end])
    split = [w for start, end in spans for w in windows(end, max_seconds, start=start, end=end)]
    return [Window(index, w.start, w.end) for index, w in enumerate(split)]


def frame_count(window_seconds: float, fps: float, max_frames: int, available: int) -> int:
    """How many frames a window gets: fps x seconds, capped by max_frames and what exists, at least 1."""
    wanted = min(round(fps * window_seconds), max_frames)
    return max(1, min(wanted, available))


def plan_window(info: VideoInfo, window: Window, options: SamplingOptions) -> FramePlan:
    """The evenly spread frames of one window."""
    first = min(math.ceil(window.start * info.fps - _EPSILON), info.frame_count - 1)
    last = max(first, min(math.ceil(window.end * info.fps - _EPSILON) - 1, info.frame_count - 1))
    count = frame_count(window.duration, options.fps, options.max_frames, last - first + 1)
    first, last = _skip_edges(info, window, first, last, count / options.fps)
    indices = np.unique(np.round(np.linspace(first, last, count)).astype(int))
    return FramePlan(
        window=window,
        indices=tuple(int(i) for i in indices),
        timestamps=tuple(float(i) / info.fps for i in indices),
    )


def _skip_edges(
    info: VideoInfo, window: Window, first: int, last: int, needed_seconds: float
) -> tuple[int, int]:
    """Leave out 1 s at the video's own start and end when the window has that much room to spare."""
    at_start = window.start <= _EPSILON
    at_end = window.end >= info.duration - _EPSILON
    spare = window.duration - needed_seconds - EDGE_SKIP_SECONDS * (at_start + at_end)
    if spare < 0:
        return first, last
    skip = round(EDGE_SKIP_SECONDS * info.fps)
    return first + skip * at_start, last - skip * at_end


def plan(info: VideoInfo, options: SamplingOptions, shots: Sequence[Shot] | None = None) -> list[FramePlan]:
    """Windows and frames for a whole video, or for the span options.start to options.end.

    With `shots` (covering that span, in order), the windows follow them (`shot_windows`).
    """
    if shots:
        spans = shot_windows(shots, options.window_seconds, options.min_scene_seconds)
    else:
        spans = windows(info.duration, options.window_seconds, start=options.start or 0.0, end=options.end)
    return [plan_window(info, window, options) for window in spans]
