"""Decode ahead: the windows of many clips, in order, decoded by worker threads a bounded way ahead.

Each clip is first probed and planned, which decodes no frame; then each of its windows is a
decoding task of its own. At most `2 x workers` windows are decoded or being decoded at any moment,
whether they belong to one clip or to several, so memory is bounded by the work in flight: a 6-hour
recording costs what a 3-minute clip costs, one window at a time. A clip that cannot be read, or a
window that cannot be decoded, arrives as an item that carries the error instead of frames.

A `prepare` function, if given, runs on the decoding thread right after each window is decoded (the
model's preprocessing, for a GPU), so it too overlaps the model's work on earlier windows. A `listen`
function, if given, transcribes each planned clip's speech once, on a thread of its own (so the decoding
threads never wait for it), and the planned clip carries the transcript to every window.

Torch-free: Ray's decoding tasks run `clip_windows` without loading the model's libraries.
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TypeVar

from ..errors import SmolVLMVideoError
from ..options import SamplingOptions
from ..speech.transcript import Transcript
from ..video import SampledVideo, decode_plan, plan_video
from ..video.decode import usable_cores
from ..video.probe import VideoInfo
from ..video.sampling import FramePlan
from .records import fingerprint, safe_clip_id

logger = logging.getLogger(__name__)

DEFAULT_WORKERS = 2  # decoding threads, unless the caller says otherwise
LOOKAHEAD_PER_WORKER = 2  # windows decoded or decoding per worker, ahead of the model

T = TypeVar("T")


@dataclass(frozen=True)
class PlannedClip:
    """A clip probed and planned (its windows and frames chosen, none decoded), or why it cannot be."""

    path: str  # as given
    id: str  # safe_clip_id
    info: VideoInfo | None = None
    plans: tuple[FramePlan, ...] = ()
    error: BaseException | None = None
    seconds: float = 0.0  # probing and planning
    fingerprint: str | None = None  # records.fingerprint of the file, for an export to find it again
    transcript: Transcript | None = None  # its speech over the sampled span, where speech was asked

    @property
    def window_count(self) -> int:
        return len(self.plans)


@dataclass(frozen=True)
class DecodedWindow:
    """One window of a clip with its frames, or the error that stopped the clip (then `video` is None)."""

    clip: PlannedClip
    index: int  # which of the clip's windows, from 0
    video: SampledVideo | None = None  # with its pixels made, where `prepare` was given and succeeded
    error: BaseException | None = None


Prepare = Callable[[SampledVideo], SampledVideo]  # the video with its pixels made (media.prepare_video)
# A clip's transcript from start to end (seconds, None: its own ends): `speech.Transcribing.transcribe`
Listen = Callable[[str, float | None, float | None], Transcript]


def plan_clip(path: str, sampling: SamplingOptions) -> PlannedClip:
    """Probe and plan a clip; an unreadable one carries its error instead."""
    started = time.perf_counter()
    ident = safe_clip_id(path)
    try:
        info, plans = plan_video(path, sampling)
        found = fingerprint(path)
    except (SmolVLMVideoError, OSError) as error:
        return PlannedClip(path, ident, error=error, seconds=time.perf_counter() - started)
    seconds = time.perf_counter() - started
    return PlannedClip(path, ident, info, tuple(plans), seconds=seconds, fingerprint=found)


def listened(planned: Future[PlannedClip], sampling: SamplingOptions, listen: Listen) -> PlannedClip:
    """The clip once planned, with its transcript over the sampled span (none for a clip that failed)."""
    clip = planned.result()
    if clip.error is not None:
        return clip
    return replace(clip, transcript=listen(clip.path, sampling.start, sampling.end))


def decode_window(
    clip: PlannedClip, index: int, sampling: SamplingOptions, threads: int, prepare: Prepare | None = None
) -> DecodedWindow:
    """Decode one planned window of a clip and prepare it if asked; a decoding failure is carried, not raised.

    A failed `prepare` is logged and leaves the video without pixels: the model's own path makes them
    when it answers the window, and reports the failure for this clip alone if it fails there too.
    """
    assert clip.info is not None, "only a planned clip has windows"
    try:
        video = decode_plan(clip.info, clip.plans[index], sampling, threads)
    except (SmolVLMVideoError, OSError) as error:
        return DecodedWindow(clip, index, error=error)
    if prepare is not None:
        try:
            video = prepare(video)
        except Exception as error:  # a clip's own problem: logged here, reported when it is answered
            logger.warning("Could not prepare window %d of %s ahead: %s: %s", index, clip.path,
                           type(error).__name__, error)  # fmt: skip
    return DecodedWindow(clip, index, video)


def clip_windows(clip: PlannedClip, sampling: SamplingOptions, threads: int = 1) -> Iterator[DecodedWindow]:
    """A clip's windows decoded one after another on this thread, up to the first error."""
    if clip.error is not None:
        yield DecodedWindow(clip, 0, error=clip.error)
        return
    for index in range(clip.window_count):
        window = decode_window(clip, index, sampling, threads)
        yield window
        if window.error is not None:
            return


def prefetch_windows(
    clips: Sequence[str | PlannedClip],
    sampling: SamplingOptions,
    workers: int = DEFAULT_WORKERS,
    prepare: Prepare | None = None,
    listen: Listen | None = None,
) -> Iterator[DecodedWindow]:
    """Every window of every clip, clip by clip in order, decoded by `workers` threads ahead of the caller.

    A clip is a path, planned here, or a clip the caller planned already (`plan_clip`).

    The cores are shared out among the workers' decoders: frame threading inside each decoder costs
    about 15% more CPU than decoding windows side by side on one thread each.
    """
    workers = max(1, workers)
    lookahead = LOOKAHEAD_PER_WORKER * workers
    threads = max(1, usable_cores() // workers)
    listening = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smolvlm-listen")
    with listening, ThreadPoolExecutor(max_workers=workers, thread_name_prefix="smolvlm-decode") as pool:
        pending: deque[Future[DecodedWindow]] = deque()
        hear = (
            functools.partial(listening.submit, listened, sampling=sampling, listen=listen)
            if listen
            else None
        )
        tasks = _window_tasks(pool, clips, sampling, threads, lookahead, prepare, hear)
        try:
            for task in tasks:
                pending.append(task)
                if len(pending) >= lookahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            tasks.close()
            for future in pending:
                future.cancel()


def _window_tasks(
    pool: ThreadPoolExecutor,
    clips: Sequence[str | PlannedClip],
    sampling: SamplingOptions,
    threads: int,
    lookahead: int,
    prepare: Prepare | None,
    hear: Callable[[Future[PlannedClip]], Future[PlannedClip]] | None = None,
) -> Iterator[Future[DecodedWindow]]:
    """One future per window, in order, submitted as the caller asks for them.

    Clips are probed up to `lookahead` clips ahead (a probe holds no frames), so a clip's windows can
    be handed out without waiting for its probe. `hear` turns a probe into one that also transcribes.
    """
    queued = iter(clips)
    probes: deque[Future[PlannedClip]] = deque()

    def refill() -> None:
        for clip in itertools.islice(queued, lookahead - len(probes)):
            if isinstance(clip, PlannedClip):
                probes.append(_done(clip))
                continue
            probe = pool.submit(plan_clip, clip, sampling)
            probes.append(hear(probe) if hear else probe)

    refill()
    try:
        while probes:
            clip = probes.popleft().result()
            refill()
            if clip.error is not None:
                yield _done(DecodedWindow(clip, 0, error=clip.error))
                continue
            for index in range(clip.window_count):
                yield pool.submit(decode_window, clip, index, sampling, threads, prepare)
    finally:
        for probe in probes:
            probe.cancel()


def _done(result: T) -> Future[T]:
    future: Future[T] = Future()
    future.set_result(result)
    return future
