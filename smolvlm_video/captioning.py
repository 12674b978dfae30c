"""Caption many clips with one model: windows stream from the decoders through the model into records.

Worker threads decode the next windows, of this clip or the next ones, while the model answers the
current ones (`prefetch`). Windows are answered `batch_size` chats per generate call (one chat per
window and prompt) by an `Answerer`, which backs off on out-of-memory and narrows any other failure
down to the chats that fail alone; a window's frames are let go as soon as it is answered. A clip's
record is made when its last window is answered, so memory is bounded by the windows in flight,
whatever a video's length. A clip that cannot be read, or whose chat the model cannot answer,
becomes an error record; the others go on.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .clips import DEFAULT_PROMPT
from .errors import GenerationError, OptionsError
from .options import GenerationOptions, ModelOptions, SamplingOptions
from .prefetch import DEFAULT_WORKERS, DecodedWindow, PlannedClip, prefetch_windows
from .prompts import chat, clock
from .records import CaptionRecord, Segment, error_record
from .registry import resolve_model_id

if TYPE_CHECKING:
    from .batching import Answerer
    from .inputs import PreparedVideo
    from .model import LoadedModel
    from .video import SampledVideo


@dataclass(frozen=True)
class CaptionJob:
    """How every clip is captioned: the model, the prompts, sampling and generation.

    Frozen and picklable: the same object goes to Ray's workers, which load their own model from it.
    """

    model: ModelOptions = field(default_factory=ModelOptions)
    prompts: Mapping[str, str] = field(default_factory=lambda: {"caption": DEFAULT_PROMPT})  # name -> text
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    generation: GenerationOptions = field(default_factory=GenerationOptions)
    system: str | None = None  # a system message before each prompt
    batch_size: int = 4  # chats per generate call; one chat per window and prompt
    summarize: bool = False  # clips of several windows also get one caption written from the windows'
    # Local engine: decoding threads (default 2). Ray engine: decoding tasks at once (default: no limit).
    workers: int | None = None

    def __post_init__(self) -> None:
        if not self.prompts or not all(isinstance(t, str) and t.strip() for t in self.prompts.values()):
            raise OptionsError("prompts must map each prompt's name to a non-empty text.", "prompts")
        if self.batch_size < 1:
            raise OptionsError(f"batch_size must be at least 1, got {self.batch_size!r}.", "batch_size")
        if self.workers is not None and self.workers < 1:
            raise OptionsError(f"workers must be at least 1, got {self.workers!r}.", "workers")

    def record_fields(self) -> dict[str, Any]:
        """What every record of this job says about how it was made."""
        return {
            "model": {"id": resolve_model_id(self.model.name), "revision": self.model.revision},
            "prompts": dict(self.prompts),
            "system": self.system,
            "sampling": self.sampling.to_dict(),
            "generation": self.generation.to_dict(),
        }


def read_prompts(path: str | os.PathLike[str]) -> dict[str, str]:
    """Named prompts from a JSON file holding one object of name -> prompt text."""
    try:
        prompts = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise OptionsError(f"{os.fspath(path)}: cannot read the prompt file ({error}).", "prompts") from error
    except json.JSONDecodeError as error:
        raise OptionsError(f"{os.fspath(path)} is not valid JSON: {error}", "prompts") from error
    if not (
        isinstance(prompts, dict) and prompts and all(isinstance(v, str) and v for v in prompts.values())
    ):
        raise OptionsError(f"{os.fspath(path)} must hold a JSON object of name -> prompt text.", "prompts")
    return prompts


@dataclass
class ClipCaptions:
    """One clip's captioning while its windows are answered; its record once all of them are."""

    clip: PlannedClip
    segments: list[Segment] = field(default_factory=list)
    error: BaseException | None = None
    decode_seconds: float = 0.0
    generate_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.error = self.error or self.clip.error

    @property
    def done(self) -> bool:
        return self.error is not None or len(self.segments) == self.clip.window_count

    def add(self, window: DecodedWindow, answers: Mapping[str, str], seconds: float) -> None:
        """A window's answers, one per prompt."""
        assert window.video is not None
        video = window.video
        self.decode_seconds += video.decode_seconds
        self.generate_seconds += seconds
        self.segments.append(
            Segment(
                start=round(video.window.start, 3),
                end=round(video.window.end, 3),
                caption=_one_or_map(dict(answers)),
                frame_count=video.frame_count,
                timestamps=list(video.timestamps),
            )
        )

    def fail(self, error: BaseException) -> None:
        self.error = self.error or error

    def merge(self, part: ClipCaptions) -> None:
        """What another worker found on some windows of the same clip (Ray's actors)."""
        self.segments += part.segments
        self.decode_seconds += part.decode_seconds
        self.generate_seconds += part.generate_seconds
        if part.error is not None:
            self.fail(part.error)

    def record(self, job: CaptionJob) -> CaptionRecord:
        clip = self.clip
        if self.error is not None:
            return error_record(clip.path, self.error, id=clip.id, **job.record_fields())
        info = clip.info
        assert info is not None
        segments = sorted(self.segments, key=lambda s: s.start)  # Ray's actors answer in any order
        by_prompt = {name: "\n".join(_text(s.caption, name) for s in segments) for name in job.prompts}
        return CaptionRecord(
            path=clip.path,
            abs_path=os.path.abspath(clip.path),
            id=clip.id,
            status="ok",
            caption=_one_or_map(by_prompt),
            segments=segments,
            video={k: getattr(info, k) for k in ("duration", "fps", "width", "height", "codec", "rotation")},
            timings={
                "decode": round(clip.seconds + self.decode_seconds, 3),
                "generate": round(self.generate_seconds, 3),
            },
            **job.record_fields(),
        )


def caption_clips(
    model: LoadedModel, job: CaptionJob, paths: Sequence[str], answerer: Answerer | None = None
) -> Iterator[CaptionRecord]:
    """One record per path, in order, each as soon as its clip's last window is answered.

    `job.sampling` should carry the model's frame side (`SamplingOptions.for_frame_side`).
    """
    from .batching import Answerer

    answerer = answerer or Answerer(model, job.generation, job.batch_size)
    open_clips: deque[ClipCaptions] = deque()
    batch: list[tuple[ClipCaptions, DecodedWindow]] = []
    windows = prefetch_windows(paths, job.sampling, job.workers or DEFAULT_WORKERS, preparer(model))
    for window in windows:
        if window.position == 0:
            open_clips.append(ClipCaptions(window.clip))
        clip = open_clips[-1]
        if window.error is not None:
            clip.fail(window.error)
        elif clip.error is None:
            batch.append((clip, window))
        if len(batch) * len(job.prompts) >= answerer.batch_size:
            answer_windows(answerer, job, batch)
            batch = []
        yield from finished_records(answerer, job, open_clips)
    answer_windows(answerer, job, batch)
    yield from finished_records(answerer, job, open_clips)


def preparer(model: LoadedModel) -> Callable[[SampledVideo], PreparedVideo] | None:
    """On CUDA, what makes a window's pixels on the decoding threads, in pinned memory; elsewhere None.

    Off the GPU the model's own thread prepares each batch: the cores are the decoders' and the
    model's already, and pixels in float32 ahead of time would hold 4x the frames' memory.
    """
    if model.device.type != "cuda":
        return None
    from .inputs import prepare_video

    return functools.partial(prepare_video, model.processor, dtype=model.dtype, pin=True)


def answer_windows(
    answerer: Answerer, job: CaptionJob, batch: list[tuple[ClipCaptions, DecodedWindow]]
) -> None:
    """Answer every prompt for each window of the batch, and hand each clip its answers or its failure."""
    live = [(clip, window) for clip, window in batch if clip.error is None]
    if not live:
        return
    chats = [
        chat(text, window.prepared or window.video, system=job.system)  # type: ignore[arg-type]
        for _, window in live
        for text in job.prompts.values()
    ]
    started = time.perf_counter()
    answers = answerer.answer(chats)
    share = (time.perf_counter() - started) / len(chats)
    names = list(job.prompts)
    for number, (clip, window) in enumerate(live):
        mine = dict(zip(names, answers[number * len(names) : (number + 1) * len(names)], strict=True))
        failure = next((a for a in mine.values() if isinstance(a, GenerationError)), None)
        if failure is not None:
            clip.fail(failure)
        else:
            clip.add(window, mine, share * len(names))  # type: ignore[arg-type]


def finished_records(
    answerer: Answerer, job: CaptionJob, open_clips: deque[ClipCaptions]
) -> list[CaptionRecord]:
    """The records of the clips at the front of the queue that are done, summarized if asked."""
    records = []
    while open_clips and open_clips[0].done:
        records.append(open_clips.popleft().record(job))
    if job.summarize:
        summarize_records(answerer, job, records)
    return records


SUMMARY_PROMPT = (
    "Here are captions of consecutive parts of one video, in order:\n\n{captions}\n\n"
    "Write one caption for the whole video."
)


def summarize_records(answerer: Answerer, job: CaptionJob, records: list[CaptionRecord]) -> None:
    """Give each ok record of several windows one caption per prompt written from its window captions.

    Where a summary fails, the window captions stay as the caption and `summary_error` says why.
    """
    todo = [(r, name) for r in records if r.status == "ok" and len(r.segments) > 1 for name in job.prompts]
    if not todo:
        return
    chats = [chat(SUMMARY_PROMPT.format(captions=window_captions(r, n)), system=job.system) for r, n in todo]
    summaries: dict[int, dict[str, str | GenerationError]] = {}
    for (record, name), answer in zip(todo, answerer.answer(chats), strict=True):
        summaries.setdefault(id(record), {})[name] = answer
    for record in records:
        answers = summaries.get(id(record))
        if not answers:
            continue
        failure = next((a for a in answers.values() if isinstance(a, GenerationError)), None)
        if failure is not None:
            record.summary_error = {"type": failure.code, "message": str(failure)}
            continue
        record.caption = _one_or_map(answers)  # type: ignore[arg-type]
        record.summarized = True


def window_captions(record: CaptionRecord, name: str) -> str:
    """A record's window captions for one prompt, a line each, behind the window's start (MM:SS)."""
    return "\n".join(f"{clock(s.start)}: {_text(s.caption, name)}" for s in record.segments)


def _text(caption: str | dict[str, str], name: str) -> str:
    return caption[name] if isinstance(caption, dict) else caption


def _one_or_map(texts: dict[str, str]) -> str | dict[str, str]:
    return next(iter(texts.values())) if len(texts) == 1 else texts
