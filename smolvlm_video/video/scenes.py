"""Find a video's shots: where the picture cuts from one scene to another.

The detector is PySceneDetect's `ContentDetector` (changes in hue, saturation and lightness between
consecutive frames, with its flash filter), fed by one PyAV pass over the span asked for that does
no more than detection needs:

- non-reference frames (the B-frames no other frame depends on) are skipped, so the decoder does the
  least work that keeps every frame it does return correct; a cut is still found within a few
  frames, well under the half second a window boundary can be off by;
- each frame is scaled to DETECT_SIDE pixels on its longest edge by the scaler as it is converted,
  so the detector never sees a full-size frame;
- frames stream through: memory is one small frame and the detector's state, whatever the length.

A video with no cut is one shot.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from ..errors import CorruptVideoError
from .probe import VideoInfo, stream_origin

DETECT_SIDE = 256  # longest edge in pixels of the frames the detector compares
THRESHOLD = 27.0  # ContentDetector's default: the frame-to-frame change score that makes a cut


@dataclass(frozen=True)
class Shot:
    """One shot, in seconds from the start of the video."""

    start: float
    end: float

    def to_dict(self) -> dict[str, float]:
        return {"start": round(self.start, 3), "end": round(self.end, 3)}


def detect_shots(
    info: VideoInfo, start: float = 0.0, end: float | None = None, skip_nonref: bool = True
) -> list[Shot]:
    """The shots of the video between `start` and `end` seconds (None: its end), in order, covering it.

    `skip_nonref=False` decodes every frame, for cuts exact to the frame at a higher cost.
    """
    end = info.duration if end is None else min(end, info.duration)
    cuts = [cut for cut in _cuts(info, start, end, skip_nonref) if start < cut < end]
    bounds = [start, *cuts, end]
    return [Shot(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def _cuts(info: VideoInfo, start: float, end: float, skip_nonref: bool) -> list[float]:
    """The times of the frames that begin a new shot."""
    from scenedetect import ContentDetector
    from scenedetect.common import FrameTimecode

    detector = ContentDetector(threshold=THRESHOLD, min_scene_len=1)
    cuts: list[float] = []
    for time, image in _frames(info, start, end, skip_nonref):
        timecode = FrameTimecode(time, fps=info.fps)
        cuts += [float(cut.seconds) for cut in detector.process_frame(timecode, image)]
    return cuts


def _frames(
    info: VideoInfo, start: float, end: float, skip_nonref: bool
) -> Iterator[tuple[float, np.ndarray]]:
    """(seconds, small BGR frame) for each (reference) frame from `start` to `end`."""
    width, height = _small_size(info)
    reformatter = VideoReformatter()  # one scaler for every frame: a new one per frame costs as much again
    container = av.open(info.path, metadata_errors="ignore")
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.skip_frame = "NONREF" if skip_nonref else "DEFAULT"
        origin = stream_origin(stream)
        if start > 0:
            container.seek(round((origin + start) / stream.time_base), stream=stream, backward=True)
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            time = frame.time - origin
            if time < start:
                continue
            if time >= end:
                break
            yield (
                time,
                reformatter.reformat(
                    frame, width, height, "bgr24", interpolation="FAST_BILINEAR"
                ).to_ndarray(),
            )
    except av.error.FFmpegError as error:
        raise CorruptVideoError(info.path, f"decoding for shot detection failed: {error}") from error
    finally:
        container.close()


def _small_size(info: VideoInfo) -> tuple[int, int]:
    """The detector's frame size in the decoder's orientation (rotation changes no colour statistic)."""
    width, height = info.coded_size
    scale = min(1.0, DETECT_SIDE / max(width, height))
    return max(2, round(width * scale) // 2 * 2), max(2, round(height * scale) // 2 * 2)
