"""Cut a clip's windows out of their source video, each into a clip file of its own, with PyAV.

Two ways, `CutOptions.mode`:

- `exact` (the default): each window's frames, from the one at its start to the last before its end,
  re-encoded with the source's timing, and its audio trimmed to the sample. Decoding starts at the
  keyframe before the first window and runs once through all of a clip's windows, so consecutive shots
  cost one decode, not one each from their own keyframe. Exactness matters because shots start between
  keyframes: a cut that starts at a keyframe starts with frames of the shot before.
- `copy`: the packets from the keyframe at or before a window's start to its end, copied as they are.
  Nothing is decoded, so it is many times faster, but the clip starts at that keyframe (up to a keyframe
  interval early: a few seconds of the previous shot with common encoder settings) and may end a few
  frames late, where B-frames need a later frame.

The frames are turned upright (a phone's rotation applied), scaled to `side` on their longest edge if asked,
and encoded as yuv420p. Each file is written under a temporary name and renamed when complete, so a file
that exists is whole, and a rerun can take it as it is.

A damaged packet is skipped and counted, as FFmpeg's own tools do, rather than failing every window of the
video; an audio stream with no decoder is left out of the clips (`Damage` says so), never the video.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from ..errors import CutError, SmolVLMVideoError
from ..video.probe import VideoInfo, stream_origin
from .options import CutOptions
from .ownership import process_alive

logger = logging.getLogger(__name__)

DECODE_AHEAD = 8  # frames decoded ahead of the encoder (at 1080p, 3 MB each)
SEEK_GAP_SECONDS = 10.0  # windows further apart than this are reached by a seek, not by decoding through
# A window is closed once the video is this far past its end, even if no audio came up to its end: the
# audio ended early, or has a gap. (Audio and video are interleaved within a second or so in any file.)
AUDIO_SLACK_SECONDS = 5.0
TIME_ROUNDING = 0.0005  # seconds: records keep a window's start and end to the millisecond
AUDIO_CODEC = "aac"
REORDER_DEPTH = 16  # video frames held to come out by presentation time (H.264 reorders at most 16)
MAX_DAMAGED_PACKETS = 1000  # of one stream, skipped; past this the file is taken as broken, not damaged


@dataclass(frozen=True)
class Span:
    """A span of one video to cut into a clip file: its start and end in seconds from the start of the video
    (an export cuts a window's span), and the file it becomes."""

    start: float
    end: float
    target: Path


def cut_spans(
    info: VideoInfo,
    spans: Sequence[Span],
    options: CutOptions,
    stop: threading.Event | None = None,
    damage: Damage | None = None,
) -> list[SmolVLMVideoError | None]:
    """Cut each span of one video into its target file; for each, None or the error that stopped it.

    A span whose target exists already is left as it is. One span's failure is its own: the others go on.
    Setting `stop` (an export interrupted) ends the cutting at the next frame, leaving no partial file.
    `damage`, if given, gets what exact cutting skipped.
    """
    todo = list({span.target: span for span in spans if not span.target.exists()}.values())  # each file once
    failed: dict[Path, SmolVLMVideoError] = {}
    for run in _runs(sorted(todo, key=lambda span: span.start)):
        for span in run:
            span.target.parent.mkdir(parents=True, exist_ok=True)
            _drop_stale_parts(span.target)
        if options.mode == "exact":
            failed |= _cut_exact(info, run, options, stop or threading.Event(), damage or Damage())
        else:
            failed |= _cut_copy(info, run, options, stop or threading.Event())
    return [failed.get(span.target) for span in spans]


def _runs(spans: list[Span]) -> Iterator[list[Span]]:
    """The spans in groups that one pass of the decoder reaches without a seek."""
    run: list[Span] = []
    for span in spans:
        if run and span.start - max(s.end for s in run) > SEEK_GAP_SECONDS:
            yield run
            run = []
        run.append(span)
    if run:
        yield run


def _part(target: Path) -> Path:
    """Where a clip is written before it is whole: a name of this process and thread alone."""
    return target.with_name(f".{target.name}.{os.getpid()}-{threading.get_ident()}.part")


def _drop_stale_parts(target: Path) -> None:
    """Delete the part files of `target` that an export killed mid-cut left behind (their process is gone)."""
    for part in target.parent.glob(f".{target.name}.*.part"):
        pid = part.name[len(target.name) + 2 :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            part.unlink(missing_ok=True)


@dataclass
class Damage:
    """What exact cutting skipped in a video: damaged packets by stream kind, and an audio stream left out."""

    packets: dict[str, int] = field(default_factory=dict)  # "video" or "audio" -> packets skipped
    audio_dropped: str | None = None  # why the clips have no audio although the source has some

    def skipped(self, kind: str) -> None:
        self.packets[kind] = self.packets.get(kind, 0) + 1
        if self.packets[kind] > MAX_DAMAGED_PACKETS:
            raise ValueError(f"more than {MAX_DAMAGED_PACKETS} damaged {kind} packets: the file is broken")

    def audio_note(self) -> str | None:
        """The row's note on a clip's audio: None where it came through whole."""
        if self.audio_dropped:
            return f"dropped: {self.audio_dropped}"
        damaged = self.packets.get("audio", 0)
        return f"gaps: {damaged} damaged packets skipped" if damaged else None


def _failure(info: VideoInfo, span: Span, error: object) -> CutError:
    return CutError(info.path, f"cutting {span.start:.3f}-{span.end:.3f} s failed: {error}")


# --- exact: decode once through a run of windows, re-encode each window's frames and audio ---------------


Held = tuple[Any, float, float] | None  # the video frame decoded last, its time, and the stream's origin


class _ExactClip:
    """One window being written: its encoders, and the first frame's time, which becomes its zero."""

    def __init__(
        self, span: Span, source: Any, audio: Any | None, size: tuple[int, int], options: CutOptions
    ):
        self.span = span
        self.part = _part(span.target)
        self.output = av.open(os.fspath(self.part), "w", format="mp4")
        try:
            self._add_streams(source, audio, size, options)
        except BaseException:
            self.abandon()
            raise
        self.zero: float | None = None  # the time of the window's first frame, in the source
        self.zero_pts = 0
        self.early_audio: list[tuple[Any, float]] = []  # audio demuxed before the first frame
        self.video_done = False
        self.audio_done = audio is None

    def _add_streams(
        self, source: Any, audio: Any | None, size: tuple[int, int], options: CutOptions
    ) -> None:
        rate = source.average_rate or source.guessed_rate or Fraction(30)
        self.video = self.output.add_stream(options.codec, rate=rate)
        self.video.width, self.video.height = size
        self.video.pix_fmt = "yuv420p"
        self.video.thread_type = "AUTO"  # frame threads, as the ffmpeg CLI: PyAV's default, slices, is slower
        self.video.codec_context.time_base = source.time_base  # the source's timing, variable rates too
        self.video.options = {
            "crf": str(options.crf),
            **({"preset": options.preset} if options.preset else {}),
        }
        self.audio = None
        if audio is not None:
            self.audio = self.output.add_stream(AUDIO_CODEC, rate=audio.sample_rate)
            self.audio.layout = audio.layout.name

    def take(self, frame: Any, time: float, reach: float, half: float, turn: _Upright, held: Held) -> None:
        """A decoded frame (video or audio, from `time` to `reach`), kept if it falls in the window.

        `held` is the video frame decoded before this one. Where the window's first frame comes later than
        its start (a variable frame rate holds a frame on screen), the held frame is what the window shows
        at its start, and it opens the clip, timed at the start.
        """
        if isinstance(frame, av.AudioFrame):
            self.add_audio(frame, time)
            self.audio_done = self.audio_done or reach >= self.span.end
            return
        if self.zero is None and time > self.span.start + half:
            self._start_held(held, half, turn)
        if time >= self.span.end - half:
            self.video_done = True
        elif time >= self.span.start - half:
            for upright in turn(frame):
                self.add_frame(upright, time)

    def _start_held(self, held: Held, half: float, turn: _Upright) -> None:
        if held is None or held[1] >= self.span.start - half:
            return
        frame, time, origin = held[0], self.span.start, held[2]
        pts = frame.pts
        frame.pts = round((origin + time) / frame.time_base)
        for upright in turn(frame):
            self.add_frame(upright, time)
        frame.pts = pts

    def done(self, clock: float) -> bool:
        """Whether all of the window is in, the video having reached `clock`."""
        return self.video_done and (self.audio_done or clock >= self.span.end + AUDIO_SLACK_SECONDS)

    def add_frame(self, frame: Any, time: float) -> None:
        if self.zero is None:
            self.zero, self.zero_pts = time, frame.pts
            for early, at in self.early_audio:
                self.add_audio(early, at)
            self.early_audio = []
        frame.pts -= self.zero_pts
        self.output.mux(self.video.encode(frame))
        frame.pts += self.zero_pts

    def add_audio(self, frame: Any, time: float) -> None:
        """The part of an audio frame (starting at `time`) that falls in the window, to the sample."""
        if self.audio is None:
            return
        if self.zero is None:
            self.early_audio.append((frame, time))
            return
        rate = frame.sample_rate
        first = max(0, round((self.zero - time) * rate))
        last = min(frame.samples, round((self.span.end - time) * rate))
        if first >= last:
            return
        piece = _slice_audio(frame, first, last)
        piece.pts = round((time - self.zero) * rate) + first
        piece.time_base = Fraction(1, rate)
        self.output.mux(self.audio.encode(piece))

    def finish(self) -> None:
        self.output.mux(self.video.encode(None))
        if self.audio is not None:
            self.output.mux(self.audio.encode(None))
        self.output.close()
        if self.zero is None:
            raise ValueError("no frame of the video falls in this window")
        os.replace(self.part, self.span.target)

    def abandon(self) -> None:
        with contextlib.suppress(Exception):  # already failing: the first error is the one reported
            self.output.close()
        self.part.unlink(missing_ok=True)


def _slice_audio(frame: Any, first: int, last: int) -> Any:
    if first == 0 and last == frame.samples:
        return frame
    samples = frame.to_ndarray()
    channels = len(frame.layout.channels)
    cut = samples[:, first:last] if frame.format.is_planar else samples[:, first * channels : last * channels]
    piece = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(cut), format=frame.format.name, layout=frame.layout.name
    )
    piece.sample_rate = frame.sample_rate
    return piece


def _cut_exact(
    info: VideoInfo, run: list[Span], options: CutOptions, stop: threading.Event, damage: Damage
) -> dict[Path, SmolVLMVideoError]:
    """Decode once from the keyframe before the run's first window; each window's frames and audio go to
    its own encoders, opened when the decoder reaches the window and closed once it is past it."""
    failed: dict[Path, SmolVLMVideoError] = {}
    pending, open_clips = list(run), []
    try:
        with av.open(info.path, metadata_errors="ignore") as container:
            source = container.streams.video[0]
            source.thread_type = "AUTO"
            audio = _decodable_audio(container, damage)
            origin, half = stream_origin(source), 0.5 / info.fps  # a frame belongs where its time rounds to
            turn = _Upright(source, info, options.side)
            container.seek(max(0, round((origin + run[0].start - half) / source.time_base)), stream=source)
            clock = run[0].start  # the time the video has reached
            held: Held = None
            streams = [source] if audio is None else [source, audio]
            for frame in _decoded_ahead(container, streams, damage):
                if stop.is_set():
                    raise InterruptedError("the export was stopped")
                time = float(frame.time) - origin
                audible = isinstance(frame, av.AudioFrame)
                reach = time + frame.samples / frame.sample_rate if audible else time
                clock = clock if audible else time
                while pending and pending[0].start - half <= reach:
                    open_clips.append(_ExactClip(pending.pop(0), source, audio, turn.size, options))
                for clip in open_clips:
                    clip.take(frame, time, reach, half, turn, held)
                held = held if audible else (frame, time, origin)
                for clip in [c for c in open_clips if c.done(clock)]:
                    open_clips.remove(clip)
                    _finish(clip, info, failed)
                if not pending and not open_clips:
                    break
    except Exception as error:  # every window not finished fails with it, leaving no partial file
        for clip in open_clips:
            clip.abandon()
        return failed | {
            span.target: _failure(info, span, error) for span in [c.span for c in open_clips] + pending
        }
    for clip in open_clips:  # the video ended: what each window holds is all it has
        _finish(clip, info, failed)
    for span in pending:
        failed[span.target] = CutError(
            info.path, f"no frame of the video falls in {span.start:.3f}-{span.end:.3f} s"
        )
    return failed


def _finish(clip: _ExactClip, info: VideoInfo, failed: dict[Path, SmolVLMVideoError]) -> None:
    try:
        clip.finish()
    except Exception as error:  # this window fails alone
        clip.abandon()
        failed[clip.span.target] = _failure(info, clip.span, error)


def _decodable_audio(container: Any, damage: Damage) -> Any | None:
    """The first audio stream, where there is one and a decoder for it; else None, noted in `damage`."""
    if not container.streams.audio:
        return None
    audio = container.streams.audio[0]
    try:
        audio.codec_context.open()  # idempotent where it is open already
    except (av.error.FFmpegError, ValueError) as error:
        damage.audio_dropped = f"its {audio.codec_context.name} audio cannot be decoded ({error})"
        return None
    return audio


def _frames(container: Any, streams: list[Any], damage: Damage) -> Iterator[Any]:
    """Every decoded frame of the streams, in the container's order, video frames in presentation order
    (`_Presentation`); timeless frames left out, and damaged packets skipped and counted in `damage` (FFmpeg's
    own tools go on past them too)."""
    video = _Presentation()
    for packet in container.demux(*streams):
        try:
            frames = packet.decode()
        except av.error.FFmpegError as error:  # the decoder's own codes too, such as the AC-3 parser's
            logger.warning("%s: skipped a damaged %s packet (%s)", container.name, packet.stream.type, error)
            damage.skipped(packet.stream.type)
            continue
        for frame in frames:
            if not isinstance(frame, av.VideoFrame):
                if frame.pts is not None and frame.time is not None:
                    yield frame
            else:
                yield from video.push(frame)
    yield from video.flush()
    if video.dropped:
        name, dropped = container.name, video.dropped
        logger.warning("%s: left out %d video frames timed at or before the one before them", name, dropped)


class _Presentation:
    """Video frames timed and ordered as FFmpeg's players and tools show them, with times that only rise.

    A frame's time is FFmpeg's best-effort timestamp: its own `pts` while those rise at least as often as
    the decoding times do, the decoding time (`dts`) otherwise. Files whose muxer stored B-frames with
    decoding times as their presentation times hand frames out timed 0, 3, 2, 4, ... frames while they show
    them in order; their decoding times are right. The frames then wait in a heap of REORDER_DEPTH to come
    out by time, and a frame timed at or before the last one out is left out (and counted), as the ffmpeg CLI
    does, since an encoder takes only rising times.
    """

    def __init__(self) -> None:
        self.faulty_pts = self.faulty_dts = 0
        self.last_pts: int | None = None
        self.last_dts: int | None = None
        self.waiting: list[tuple[int, int, Any]] = []
        self.count = itertools.count()  # a tie-break: frames never compare
        self.last_out: int | None = None
        self.dropped = 0

    def _best_effort(self, frame: Any) -> int | None:
        """FFmpeg's `guess_correct_pts`."""
        pts, dts = frame.pts, frame.dts
        if dts is not None:
            self.faulty_dts += self.last_dts is not None and dts <= self.last_dts
            self.last_dts = dts
        if pts is not None:
            self.faulty_pts += self.last_pts is not None and pts <= self.last_pts
            self.last_pts = pts
        if pts is not None and (self.faulty_pts <= self.faulty_dts or dts is None):
            return pts
        return dts

    def push(self, frame: Any) -> Iterator[Any]:
        time = self._best_effort(frame)
        if time is None or frame.time_base is None:
            return
        frame.pts = time
        heapq.heappush(self.waiting, (time, next(self.count), frame))
        if len(self.waiting) > REORDER_DEPTH:
            yield from self._out(heapq.heappop(self.waiting)[2])

    def flush(self) -> Iterator[Any]:
        while self.waiting:
            yield from self._out(heapq.heappop(self.waiting)[2])

    def _out(self, frame: Any) -> Iterator[Any]:
        if self.last_out is not None and frame.pts <= self.last_out:
            self.dropped += 1
            return
        self.last_out = frame.pts
        yield frame


_END = object()


def _decoded_ahead(container: Any, streams: list[Any], damage: Damage) -> Iterator[Any]:
    """`_frames`, decoded on a thread of its own up to DECODE_AHEAD frames ahead, so that decoding overlaps
    encoding as in the ffmpeg CLI (PyAV lets go of the GIL in both). A decoding error is raised here."""
    frames: queue.Queue[Any] = queue.Queue(DECODE_AHEAD)
    stop = threading.Event()

    def offer(item: Any) -> bool:
        """Put `item` on the queue once there is room; False if the consumer has stopped meanwhile."""
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                frames.put(item, timeout=0.1)
                return True
        return False

    def decode() -> None:
        try:
            for frame in _frames(container, streams, damage):
                if not offer(frame):
                    return
            offer(_END)
        except BaseException as error:  # handed to the consumer, which raises it
            offer(error)

    thread = threading.Thread(target=decode, name="cut-decode", daemon=True)
    thread.start()
    try:
        while (item := frames.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


class _Upright:
    """Turns decoded frames upright and to the asked size, as yuv420p; a filter graph where one is needed."""

    def __init__(self, source: Any, info: VideoInfo, side: int | None) -> None:
        width, height = info.width, info.height  # as displayed: after rotation
        if side is not None and max(width, height) > side:
            scale = side / max(width, height)
            width, height = round(width * scale), round(height * scale)
        self.size = (max(2, width // 2 * 2), max(2, height // 2 * 2))  # yuv420p wants even sides
        self.graph = None
        turns = {90: ["transpose=cclock"], 180: ["hflip", "vflip"], 270: ["transpose=clock"]}
        steps = [*turns.get(info.rotation, []), f"scale={self.size[0]}:{self.size[1]}", "format=yuv420p"]
        if info.rotation:
            self.graph = av.filter.Graph()
            nodes = [self.graph.add_buffer(template=source)]
            for step in steps:
                name, _, arguments = step.partition("=")
                nodes.append(self.graph.add(name, arguments or None))
            nodes.append(self.graph.add("buffersink"))
            for a, b in itertools.pairwise(nodes):
                a.link_to(b)
            self.graph.configure()

    def __call__(self, frame: Any) -> Iterator[Any]:
        if self.graph is None:
            turned = frame.reformat(width=self.size[0], height=self.size[1], format="yuv420p")
            turned.pts, turned.time_base = frame.pts, frame.time_base
            yield turned
            return
        self.graph.push(frame)
        while True:
            try:
                yield self.graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return


# --- copy: the packets from the keyframe at or before the start, as they are ---------------------------


def _cut_copy(
    info: VideoInfo, run: list[Span], options: CutOptions, stop: threading.Event
) -> dict[Path, SmolVLMVideoError]:
    failed: dict[Path, SmolVLMVideoError] = {}
    for span in run:
        try:
            _copy_span(info, span, stop)
        except Exception as error:  # this window fails alone
            _part(span.target).unlink(missing_ok=True)
            hint = (
                ""
                if isinstance(error, InterruptedError)
                else " (--cut exact re-encodes what MP4 cannot hold)"
            )
            failed[span.target] = _failure(info, span, f"{error}{hint}")
    return failed


def _copy_span(info: VideoInfo, span: Span, stop: threading.Event) -> None:
    """The packets from the keyframe at or before the span's start up to its end, into the span's file."""
    part = _part(span.target)
    with av.open(info.path, metadata_errors="ignore") as container:
        source = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        origin = stream_origin(source)
        container.seek(max(0, round((origin + span.start) / source.time_base)), stream=source, backward=True)
        with av.open(os.fspath(part), "w", format="mp4") as output:
            copies = {source: output.add_stream_from_template(source)}
            if audio is not None:
                copies[audio] = output.add_stream_from_template(audio)
            covered = _copy_packets(container, output, copies, span, origin, stop)
    if not covered:
        raise ValueError("no frame of the video falls in this window")
    os.replace(part, span.target)


def _copy_packets(
    container: Any, output: Any, copies: dict[Any, Any], span: Span, origin: float, stop: threading.Event
) -> bool:
    """Mux the span's packets, timed from the keyframe at or before its start; whether a frame of the video
    falls in the span."""
    source = next(iter(copies))
    zero: float | None = None  # the time of the keyframe the clip starts at
    covered, video_done, audio_done, clock = False, False, len(copies) == 1, span.start
    for packet in container.demux(*copies):
        if stop.is_set():
            raise InterruptedError("the export was stopped")
        if packet.dts is None or packet.pts is None:
            continue
        time = float(packet.pts * packet.time_base) - origin
        if packet.stream is source:
            zero = time if zero is None and packet.is_keyframe else zero
            clock = float(packet.dts * packet.time_base) - origin
            video_done = video_done or clock >= span.end
            covered = covered or span.start - TIME_ROUNDING <= time < span.end
            keep = zero is not None and not video_done
        else:
            audio_done = audio_done or time >= span.end
            keep = zero is not None and zero <= time < span.end
        if video_done and (audio_done or clock >= span.end + AUDIO_SLACK_SECONDS):
            break
        if keep:
            assert zero is not None
            shift = round((zero + origin) / packet.time_base)
            packet.pts, packet.dts = packet.pts - shift, packet.dts - shift
            packet.stream = copies[packet.stream]
            output.mux(packet)
    return covered
