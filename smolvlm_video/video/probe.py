"""What a video file is: duration, frame rate, frame count, size, rotation, codec.

The container's own header (read with PyAV, which also decodes the first frame to prove the file
is a decodable video and to read its rotation) answers most files in a few milliseconds. Where that
header is missing or wrong (no frame count, as in WebM and MKV; a frame rate of 0 or 90000; a
variable frame rate), the stream's packets are counted instead: demuxed with PyAV in this process,
never decoded, and no ffprobe to start.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from ..errors import CorruptVideoError, EmptyVideoError, NotAVideoError, TooLargeError, VideoNotFoundError
from ..options import MAX_FRAME_PIXELS

# Frame rates outside this range are container time bases or junk, not frame rates.
PLAUSIBLE_FPS = (0.01, 1000.0)
# A stream whose nominal and average frame rates differ by more than this is variable-rate.
VFR_TOLERANCE = 0.01
# libavformat demuxers that read single still images (image2, png_pipe, jpeg_pipe, ...).
IMAGE_DEMUXERS = ("image2", "_pipe")


@dataclass(frozen=True)
class VideoInfo:
    """The facts about one video file that sampling needs. Sizes are as displayed (after rotation)."""

    path: str
    duration: float  # seconds
    fps: float  # average frames per second
    frame_count: int  # decodable frames in the video stream
    width: int  # pixels, as displayed
    height: int  # pixels, as displayed
    rotation: int  # counter-clockwise degrees to turn a decoded frame upright: 0, 90, 180 or 270
    codec: str  # e.g. "h264", "vp9"
    container: str  # libavformat demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    variable_frame_rate: bool
    metadata_source: str  # "container", or "packets" where the header was missing or wrong

    def to_dict(self) -> dict[str, Any]:
        """The facts as plain JSON-ready values."""
        return asdict(self)

    @property
    def coded_size(self) -> tuple[int, int]:
        """Width and height as the decoder gives frames, before they are turned upright."""
        return turned(self.width, self.height, self.rotation)


def turned(width: int, height: int, rotation: int) -> tuple[int, int]:
    """A size turned by `rotation` degrees: swapped by a quarter turn (90 or 270), else as it was."""
    return (height, width) if rotation in (90, 270) else (width, height)


def probe(path: str | os.PathLike[str], max_pixels: int = MAX_FRAME_PIXELS) -> VideoInfo:
    """Read what a video file is, or raise a `VideoError` that names the file and the cause.

    A video whose frames have more than `max_pixels` pixels raises TooLargeError, read from the header
    before any frame is decoded.
    """
    path = _check_file(path)
    container = _open(path)
    try:
        stream = _video_stream(container, path)
        check_frame_pixels(path, stream.codec_context.width, stream.codec_context.height, max_pixels)
        rotation = _first_frame_rotation(container, stream, path)
        info = _from_container(path, container, stream, rotation)
        check_frame_pixels(path, info.width, info.height, max_pixels)  # where the header had no size
    finally:
        container.close()
    if _header_untrustworthy(info):
        info = _with_packet_count(info)
    return _checked(info)


def check_frame_pixels(path: str, width: int, height: int, max_pixels: int) -> None:
    """Raise TooLargeError where a width x height frame has more than `max_pixels` pixels."""
    if width * height > max_pixels:
        raise TooLargeError(
            path,
            f"its frames are {width}x{height}, {width * height:,} pixels; at most {max_pixels:,} are decoded "
            "(--max-pixels). Scale it down first (ffmpeg -i in -vf scale=1920:-2 out.mp4).",
        )


def stream_origin(stream: Any) -> float:
    """The stream's first presentation time in seconds (0 when the container gives none): frame times
    count from it."""
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def _check_file(path: str | os.PathLike[str]) -> str:
    file = Path(path)
    if not file.exists():
        raise VideoNotFoundError(path, "no such file")
    if not file.is_file():
        raise VideoNotFoundError(path, "not a file (a folder or a device?)")
    if file.stat().st_size == 0:
        raise EmptyVideoError(path, "the file is empty (0 bytes)")
    if not os.access(file, os.R_OK):
        raise VideoNotFoundError(path, "the file cannot be read (permission denied)")
    return os.fspath(path)


def _looks_like_text(path: str) -> bool:
    with open(path, "rb") as file:
        head = file.read(512)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\r\n\t" for ch in text)


def _open(path: str) -> av.container.InputContainer:
    try:
        return av.open(path, metadata_errors="ignore")
    except av.error.FFmpegError as error:
        if _looks_like_text(path):
            raise NotAVideoError(path, "this is a text file, not a video") from error
        reason = getattr(error, "strerror", None) or str(error)
        raise CorruptVideoError(
            path, f"cannot be read as a video (truncated or damaged?): {reason}"
        ) from error


def _video_stream(container: av.container.InputContainer, path: str) -> av.video.stream.VideoStream:
    demuxer = container.format.name
    if demuxer.startswith(IMAGE_DEMUXERS[0]) or demuxer.endswith(IMAGE_DEMUXERS[1]):
        kind = demuxer.removesuffix("_pipe")
        raise NotAVideoError(path, f"this is an image ({kind}), not a video; pass it as an image instead")
    if not container.streams.video and container.streams.audio:
        raise NotAVideoError(path, "the file has audio but no video stream")
    if not container.streams.video:
        raise EmptyVideoError(path, "the file holds no video frames (no video stream)")
    return container.streams.video[0]


def _first_frame_rotation(container: av.container.InputContainer, stream: Any, path: str) -> int:
    """Decode the first frame: proves the stream decodes, and carries the display rotation."""
    try:
        frame = next(container.decode(stream), None)
    except av.error.FFmpegError as error:
        raise CorruptVideoError(path, f"the video stream cannot be decoded: {error}") from error
    if frame is None:
        raise EmptyVideoError(path, "the video stream has no frames")
    return round(frame.rotation) % 360


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _from_container(path: str, container: Any, stream: Any, rotation: int) -> VideoInfo:
    average = stream.average_rate or stream.guessed_rate
    nominal = stream.base_rate
    fps = float(average) if average else 0.0
    duration = _seconds(stream.duration, stream.time_base)
    if duration is None and container.duration is not None:
        duration = container.duration / av.time_base
    variable = bool(average and nominal) and abs(float(nominal) - fps) > VFR_TOLERANCE * fps
    width, height = turned(stream.codec_context.width, stream.codec_context.height, rotation)
    return VideoInfo(
        path=path,
        duration=duration or 0.0,
        fps=fps,
        frame_count=stream.frames or 0,
        width=width,
        height=height,
        rotation=rotation,
        codec=stream.codec_context.name,
        container=container.format.name,
        variable_frame_rate=variable,
        metadata_source="container",
    )


def _plausible_fps(fps: float) -> bool:
    return PLAUSIBLE_FPS[0] <= fps <= PLAUSIBLE_FPS[1]


def _header_untrustworthy(info: VideoInfo) -> bool:
    return (
        info.frame_count <= 0
        or not _plausible_fps(info.fps)
        or not info.duration > 0
        or info.variable_frame_rate
    )


def _with_packet_count(info: VideoInfo) -> VideoInfo:
    """Fix frame count, duration and fps by counting the video stream's packets, one per frame."""
    container = _open(info.path)
    try:
        stream = container.streams.video[0]
        packets, end = _count_packets(container, stream)
        length = end - stream_origin(stream) if end is not None else 0.0
    except av.error.FFmpegError as error:
        raise CorruptVideoError(info.path, f"its packets cannot be read: {error}") from error
    finally:
        container.close()
    duration = info.duration or length
    fps = packets / duration if packets and duration > 0 else info.fps
    return replace(info, frame_count=packets, duration=duration, fps=fps, metadata_source="packets")


def _count_packets(container: Any, stream: Any) -> tuple[int, float | None]:
    """How many packets the stream holds, and where the last one ends (seconds); a truncated file
    counts up to where it breaks off, as ffprobe does."""
    count, last_end = 0, None
    for packet in container.demux(stream):
        if not packet.size:
            continue  # the demuxer's end-of-stream marker
        count += 1
        if packet.pts is not None:
            end = packet.pts + (packet.duration or 0)
            last_end = end if last_end is None else max(last_end, end)
    return count, None if last_end is None else float(last_end * stream.time_base)


def _checked(info: VideoInfo) -> VideoInfo:
    if info.frame_count <= 0:
        raise EmptyVideoError(info.path, "the video stream has no frames")
    if not info.duration > 0 or not _plausible_fps(info.fps):
        raise CorruptVideoError(
            info.path,
            "its length or frame rate cannot be read, not even by counting its packets; re-encode the file "
            "(ffmpeg -i in -c:v libx264 out.mp4)",
        )
    return info
