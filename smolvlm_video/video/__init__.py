"""Sample a video: probe it, plan its windows, decode each window's frames.

This is the module the front ends call. It imports neither torch nor transformers, so tools that only
look at videos start fast and worker processes that sample frames stay light.

    >>> from smolvlm_video import SamplingOptions, sample_windows
    >>> for clip in sample_windows("talk.mp4", SamplingOptions(max_frames=32)):
    ...     print(clip.window, clip.frames.shape, clip.timestamps[:3])
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from ..errors import TooLargeError
from ..options import SamplingOptions
from .decode import decode as decode_frames  # `decode` stays the name of the module
from .probe import VideoInfo, check_frame_pixels, probe
from .sampling import FramePlan, Window, plan

if TYPE_CHECKING:
    import torch

    from .scenes import Shot

VideoSource = str | os.PathLike[str] | VideoInfo


@dataclass(frozen=True)
class ModelPixels:
    """A medium's pixels as the model's processor makes them (batch 1): resized, normalised, padded."""

    values: torch.Tensor  # (1, images, 3, side, side)
    mask: torch.Tensor  # (1, images, side, side): which pixels are the image's, not padding


@dataclass(frozen=True)
class SampledVideo:
    """The frames of one window of a video, ready for the model. Each frame is its own image."""

    info: VideoInfo
    window: Window
    frames: np.ndarray  # (N, height, width, 3) uint8 RGB, longest edge at the frame side
    timestamps: tuple[float, ...]  # seconds from the start of the video, one per frame
    indices: tuple[int, ...]  # frame numbers in the video stream
    backend: str  # the decoder that produced the frames
    decode_seconds: float
    # The processor's pixels for these frames, where they were made ahead (`media.prepare_video`);
    # None: they are made when the video is put into the model's inputs. Either way the same prompt.
    pixels: ModelPixels | None = None

    @property
    def path(self) -> str:
        return self.info.path

    @property
    def frame_count(self) -> int:
        return len(self.frames)

    @functools.cached_property
    def digest(self) -> str:
        """A hash of the frames' pixels and shape, made once: the same frames, whatever the file, one digest.

        The model side knows a video's vision features by it (`model.media.medium_key`).
        """
        frames = np.ascontiguousarray(self.frames)
        digest = hashlib.blake2b(f"video {frames.shape} {frames.dtype}".encode(), digest_size=16)
        digest.update(memoryview(frames).cast("B"))
        return digest.hexdigest()


def _info(video: VideoSource, options: SamplingOptions) -> VideoInfo:
    info = video if isinstance(video, VideoInfo) else probe(video, options.max_pixels)
    check_frame_pixels(info.path, info.width, info.height, options.max_pixels)
    return info


def plan_video(
    video: VideoSource, options: SamplingOptions | None = None
) -> tuple[VideoInfo, list[FramePlan]]:
    """Probe a video and plan its windows and frames without decoding any (but the shot pass, if asked).

    Frames larger than `options.max_pixels` raise TooLargeError before anything is decoded.
    """
    options = options or SamplingOptions()
    info = _info(video, options)
    return info, plan(info, options, video_shots(info, options))


def check_window_pixels(info: VideoInfo, frame_plan: FramePlan, options: SamplingOptions) -> None:
    """Raise TooLargeError where a window's frames add up to more source pixels than the budget allows."""
    check_frame_pixels(info.path, info.width, info.height, options.max_pixels)
    total = len(frame_plan.indices) * info.width * info.height
    if total > options.max_total_pixels:
        raise TooLargeError(
            info.path,
            f"{len(frame_plan.indices)} frames of {info.width}x{info.height} are {total:,} pixels to decode; "
            f"at most {options.max_total_pixels:,} are decoded for one window (--max-total-pixels). "
            "Lower --max-frames or --fps.",
        )


def video_shots(info: VideoInfo, options: SamplingOptions) -> list[Shot] | None:
    """The shots the windows follow with split "scenes" (a pass over the span); None with "fixed"."""
    if options.split != "scenes":
        return None
    from .scenes import detect_shots

    return detect_shots(info, options.start or 0.0, options.end)


def decode_plan(
    info: VideoInfo, frame_plan: FramePlan, options: SamplingOptions, threads: int = 0
) -> SampledVideo:
    """Decode the frames of one planned window on `threads` cores (0: all), within the pixel budget."""
    check_window_pixels(info, frame_plan, options)
    indices, side = frame_plan.indices, options.side
    decoded = decode_frames(info, indices, side, options.backend, threads, options.snap_seconds)
    return SampledVideo(
        info=info,
        window=frame_plan.window,
        frames=decoded.frames,
        timestamps=decoded.timestamps,
        indices=decoded.indices,
        backend=decoded.backend,
        decode_seconds=decoded.seconds,
    )


def sample_windows(
    video: VideoSource, options: SamplingOptions | None = None, threads: int = 0
) -> Iterator[SampledVideo]:
    """Every window of the video (or of options.start to options.end), decoded one at a time as consumed.

    `threads`: the cores decoding may use, 0 for all; give less when decoding several videos at once.
    """
    options = options or SamplingOptions()
    info, plans = plan_video(video, options)
    for frame_plan in plans:
        yield decode_plan(info, frame_plan, options, threads)


def sample_video(video: VideoSource, options: SamplingOptions | None = None) -> SampledVideo:
    """One window: options.start to options.end if that fits in one, else the first window_seconds of it.

    A 10-minute video with default options gives its first 210 s; use `sample_windows` for all of it.
    """
    options = options or SamplingOptions()
    info = _info(video, options)
    start = options.start or 0.0
    end = min(info.duration, options.end if options.end is not None else info.duration)
    if end - start > options.window_seconds:
        options = replace(options, end=start + options.window_seconds)
    _, plans = plan_video(info, options)
    return decode_plan(info, plans[0], options)
