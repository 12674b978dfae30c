"""Caption many clips: find them, decode ahead in worker threads, generate in batches, yield records.

The model never waits for decoding while clips are left: `workers` threads decode the next clips
(each window's frames, already scaled) into a bounded look-ahead, while the caller's thread batches
`batch_size` chats per generate call, sorted by frame count so that equal clips share a batch.
A clip that cannot be read becomes an error record; the others go on.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from .errors import SmolVLMVideoError
from .generate import generate
from .model import LoadedModel
from .options import GenerationOptions, SamplingOptions
from .prompts import chat
from .records import CaptionRecord, Segment, clip_id, error_record
from .video import SampledVideo, sample_windows


@dataclass
class PreparedClip:
    """A clip decoded and ready for the model, or the error that stopped it."""

    path: str
    id: str
    windows: list[SampledVideo] = field(default_factory=list)
    error: BaseException | None = None
    decode_seconds: float = 0.0


def prepare_clip(path: str, sampling: SamplingOptions, threads: int = 0) -> PreparedClip:
    """Probe and decode every window of a clip; an unreadable clip carries its error instead."""
    started = time.perf_counter()
    try:
        ident = clip_id(path)
    except OSError:
        ident = ""
    try:
        windows = list(sample_windows(path, sampling, threads))
    except (SmolVLMVideoError, OSError) as error:
        return PreparedClip(path, ident, error=error, decode_seconds=time.perf_counter() - started)
    return PreparedClip(path, ident, windows, decode_seconds=time.perf_counter() - started)


def prefetch(paths: Sequence[str], sampling: SamplingOptions, workers: int) -> Iterator[PreparedClip]:
    """Prepared clips in order, decoded by `workers` threads that stay at most 2 x workers clips ahead.

    The cores are shared out among the workers' decoders: frame threading inside each decoder costs
    about 15% more CPU than decoding clips side by side on one thread each.
    """
    threads = max(1, usable_cores() // max(1, workers))
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="smolvlm-decode") as pool:
        pending: deque[Future[PreparedClip]] = deque()
        queued = iter(paths)
        try:
            for path in queued:
                pending.append(pool.submit(prepare_clip, path, sampling, threads))
                if len(pending) >= 2 * max(1, workers):
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass
class CaptionJob:
    """What the captioner needs besides the clips."""

    model: LoadedModel
    prompts: dict[str, str]
    sampling: SamplingOptions
    generation: GenerationOptions = field(default_factory=GenerationOptions)
    system: str | None = None
    batch_size: int = 4
    summarize: bool = False  # add one whole-video caption written from the window captions
    workers: int = 2


def caption_clips(job: CaptionJob, paths: Sequence[str]) -> Iterator[CaptionRecord]:
    """One record per path, in order, as batches finish."""
    batch: list[PreparedClip] = []
    for clip in prefetch(paths, job.sampling, job.workers):
        batch.append(clip)
        if len(batch) >= job.batch_size:
            yield from caption_batch(job, batch)
            batch = []
    if batch:
        yield from caption_batch(job, batch)


def caption_batch(job: CaptionJob, clips: list[PreparedClip]) -> list[CaptionRecord]:
    """Answer every prompt for every window of the clips, batch_size chats per generate call."""
    tasks = [
        (clip, window, name)
        for clip in clips
        if clip.error is None
        for window in clip.windows
        for name in job.prompts
    ]
    tasks.sort(key=lambda task: task[1].frame_count)
    answers: dict[tuple[int, int, str], str] = {}
    failures: dict[int, BaseException] = {}
    seconds: dict[int, float] = {}
    for start in range(0, len(tasks), job.batch_size):
        chunk = tasks[start : start + job.batch_size]
        started = time.perf_counter()
        try:
            texts = generate(
                job.model, [chat(job.prompts[n], w, system=job.system) for _, w, n in chunk], job.generation
            )
        except SmolVLMVideoError as error:
            for clip, _, _ in chunk:
                failures[id(clip)] = error
            continue
        share = (time.perf_counter() - started) / len(chunk)
        for (clip, window, name), text in zip(chunk, texts, strict=True):
            answers[(id(clip), window.window.index, name)] = text
            seconds[id(clip)] = seconds.get(id(clip), 0.0) + share
    records = [
        _record(job, clip, answers, failures.get(id(clip)), seconds.get(id(clip), 0.0)) for clip in clips
    ]
    if job.summarize:
        summarize_records(job, records)
    return records


SUMMARY_PROMPT = (
    "Here are captions of consecutive parts of one video, in order:\n\n{captions}\n\n"
    "Write one caption for the whole video."
)


def summarize_records(job: CaptionJob, records: list[CaptionRecord]) -> None:
    """Give each multi-window ok record one caption written from its window captions (text only)."""
    todo = [(r, name) for r in records if r.status == "ok" and len(r.segments) > 1 for name in job.prompts]
    for start in range(0, len(todo), job.batch_size):
        chunk = todo[start : start + job.batch_size]
        chats = [
            chat(SUMMARY_PROMPT.format(captions=_window_captions(r, name)), system=job.system)
            for r, name in chunk
        ]
        try:
            texts = generate(job.model, chats, job.generation)
        except SmolVLMVideoError:
            continue  # the window captions stay as the caption
        for (record, name), text in zip(chunk, texts, strict=True):
            if isinstance(record.caption, dict):
                record.caption[name] = text
            else:
                record.caption = text
            record.summarized = True


def _window_captions(record: CaptionRecord, name: str) -> str:
    lines = []
    for segment in record.segments:
        text = segment.caption[name] if isinstance(segment.caption, dict) else segment.caption
        lines.append(f"{int(segment.start // 60):02d}:{int(segment.start % 60):02d}: {text}")
    return "\n".join(lines)


def _record(
    job: CaptionJob, clip: PreparedClip, answers: dict, failure: BaseException | None, generate_seconds: float
) -> CaptionRecord:
    error = clip.error or failure
    if error is not None:
        return error_record(clip.path, error, id=clip.id or None, **_common(job))
    segments = []
    for window in clip.windows:
        texts = {name: answers[(id(clip), window.window.index, name)] for name in job.prompts}
        segments.append(
            Segment(
                start=round(window.window.start, 3),
                end=round(window.window.end, 3),
                caption=_one_or_map(texts),
                frame_count=window.frame_count,
                timestamps=list(window.timestamps),
            )
        )
    by_prompt = {
        name: "\n".join(s.caption[name] if isinstance(s.caption, dict) else s.caption for s in segments)
        for name in job.prompts
    }
    info = clip.windows[0].info
    return CaptionRecord(
        path=clip.path,
        abs_path=os.path.abspath(clip.path),
        id=clip.id,
        status="ok",
        caption=_one_or_map(by_prompt),
        segments=segments,
        video={k: getattr(info, k) for k in ("duration", "fps", "width", "height", "codec", "rotation")},
        timings={"decode": round(clip.decode_seconds, 3), "generate": round(generate_seconds, 3)},
        **_common(job),
    )


def _one_or_map(texts: dict[str, str]) -> str | dict[str, str]:
    return next(iter(texts.values())) if len(texts) == 1 else texts


def _common(job: CaptionJob) -> dict:
    return {
        "model": {"id": job.model.model_id, "revision": job.model.revision},
        "prompts": dict(job.prompts),
        "system": job.system,
        "sampling": job.sampling.to_dict(),
        "generation": job.generation.to_dict(),
    }
