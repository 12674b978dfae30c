"""Which frames to decode: the planned frames as targets, exact, snapped onto a keyframe, or free to
move onto a nearby reference frame, and grouped by the keyframe interval they fall in.

Pure arithmetic on times in seconds: `decode` turns the targets into frames.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass


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


def keyframe_groups(targets: Sequence[Target], keyframes: Sequence[float]) -> list[list[Target]]:
    """The targets split where a keyframe lies between two of them, in order.

    A group decodes on its own from the keyframe before it, so groups can go to separate decoders;
    without a keyframe index the targets stay one group.
    """
    groups: list[list[Target]] = []
    interval = None
    for target in targets:
        current = bisect.bisect_right(keyframes, target.time) - 1
        if not groups or current != interval:
            groups.append([])
            interval = current
        groups[-1].append(target)
    return groups if keyframes else [list(targets)]
