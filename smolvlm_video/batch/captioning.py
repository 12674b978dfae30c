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

import copy
import functools
import json
import os
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checks import check_number
from ..errors import GenerationError, OptionsError
from ..model.prompts import clock
from ..model.registry import resolve_model_id
from ..model.schemas import JsonSchema, Question, check_generation
from ..options import GenerationOptions, ModelOptions, SamplingOptions
from ..speech import SpeechOptions, Transcribing, speech_question
from .clips import DEFAULT_PROMPT
from .prefetch import DEFAULT_WORKERS, DecodedWindow, Listen, PlannedClip, Prepare, prefetch_windows
from .records import VIDEO_FIELDS, CaptionRecord, WindowCaption, answer_text, error_record

if TYPE_CHECKING:
    from ..model.generate import Answer
    from ..model.loading import LoadedModel
    from ..video import SampledVideo
    from .answering import Answerer


@dataclass(frozen=True)
class CaptionJob:
    """How every clip is captioned: the model, the questions, sampling and generation.

    Frozen and picklable: the same object goes to Ray's workers, which load their own model from it.
    """

    model: ModelOptions = field(default_factory=ModelOptions)
    # name -> what is asked of every window; a question with a schema is answered in JSON that follows it,
    # and records hold those answers parsed, in `answers`
    questions: Mapping[str, Question] = field(default_factory=lambda: {"caption": Question(DEFAULT_PROMPT)})
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    generation: GenerationOptions = field(default_factory=GenerationOptions)
    system: str | None = None  # a system message before each question
    batch_size: int = 4  # chats per generate call; one chat per window and question
    summarize: bool = False  # clips of several windows also get one caption written from the windows'
    # Local engine: decoding threads (default 2). Ray engine: decoding tasks at once (default: no limit).
    workers: int | None = None
    speech: SpeechOptions = field(default_factory=SpeechOptions)  # each clip's speech, once (docs/speech.md)

    def __post_init__(self) -> None:
        questions = self.questions
        if not questions or not all(isinstance(q, Question) and q.text.strip() for q in questions.values()):
            raise OptionsError(
                "questions must map each name to a Question with a non-empty text.", "questions"
            )
        if any(q.schema for q in questions.values()):
            check_generation(self.generation.min_new_tokens)
        check_number("batch_size", self.batch_size, least=1, whole=True)
        if self.workers is not None:
            check_number("workers", self.workers, least=1, whole=True)
        if not isinstance(self.speech, SpeechOptions):
            raise OptionsError("speech must be SpeechOptions.", "speech")

        # What every record of this job says about how it was made: the same for each, so made once.
        object.__setattr__(self, "_record_fields", {
            "model": {"id": resolve_model_id(self.model.name), "revision": self.model.revision},
            "prompts": [
                {"name": name, "text": q.text, "schema": q.schema.text if q.schema else None}
                for name, q in questions.items()
            ],
            "system": self.system,
            "sampling": self.sampling.to_dict(),
            "generation": self.generation.to_dict(),
        })  # fmt: skip

    def planned_tokens(self, clips: int) -> int:
        """The new tokens `clips` clips ask for at least: a window each, every question answered in full."""
        return clips * len(self.questions) * self.generation.max_new_tokens

    def record_fields(self) -> dict[str, Any]:
        """What every record of this job says about how it was made (a copy each record may keep)."""
        return copy.deepcopy(self._record_fields)  # type: ignore[attr-defined]


PROMPT_FILE_SHAPE = 'name -> prompt text, or name -> {"prompt": text, "schema": a JSON schema}'


def read_questions(
    prompt: str | None = None,
    prompt_file: str | os.PathLike[str] | None = None,
    json_schema: str | os.PathLike[str] | None = None,
) -> dict[str, Question]:
    """The questions a job asks: one `prompt` (named "caption"), or the named prompts of a JSON file.

    `json_schema`: a schema file, for every question that brings no schema of its own. The prompt file
    holds an object of PROMPT_FILE_SHAPE. Raises OptionsError naming the field that is wrong.
    """
    if prompt is not None and prompt_file is not None:
        raise OptionsError("give a prompt or a prompt file, not both.", "prompt_file")
    default = JsonSchema.from_file(json_schema) if json_schema is not None else None
    if prompt_file is None:
        return {"caption": Question(prompt or DEFAULT_PROMPT, default)}
    return {
        name: Question(text, schema or default) for name, (text, schema) in _prompt_file(prompt_file).items()
    }


def _prompt_file(path: str | os.PathLike[str]) -> dict[str, tuple[str, JsonSchema | None]]:
    where = os.fspath(path)
    try:
        entries = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise OptionsError(f"{where}: cannot read the prompt file ({error}).", "prompt_file") from error
    except json.JSONDecodeError as error:
        raise OptionsError(f"{where} is not valid JSON: {error}", "prompt_file") from error
    if not isinstance(entries, dict) or not entries:
        raise OptionsError(f"{where} must hold a JSON object of {PROMPT_FILE_SHAPE}.", "prompt_file")
    found = {}
    for name, entry in entries.items():
        schema = None
        if isinstance(entry, dict) and set(entry) <= {"prompt", "schema"} and "prompt" in entry:
            if "schema" in entry:
                schema = _prompt_schema(entry["schema"], f"the schema of {name!r} in {where}")
            entry = entry["prompt"]
        if not isinstance(entry, str) or not entry.strip():
            raise OptionsError(f"{where}: prompt {name!r} must be {PROMPT_FILE_SHAPE}.", "prompt_file")
        found[name] = (entry, schema)
    return found


def _prompt_schema(value: Any, source: str) -> JsonSchema:
    try:
        return JsonSchema.from_value(value, source)
    except OptionsError as error:
        raise OptionsError(str(error), "prompt_file") from error


@dataclass
class ClipCaptions:
    """One clip's captioning while its windows are answered; its record once all of them are."""

    clip: PlannedClip
    windows: list[WindowCaption] = field(default_factory=list)
    error: BaseException | None = None
    decode_seconds: float = 0.0
    encode_seconds: float = 0.0  # the vision encoder's share
    generate_seconds: float = 0.0  # the rest of answering: the language model

    def __post_init__(self) -> None:
        self.error = self.error or self.clip.error

    @property
    def done(self) -> bool:
        return self.error is not None or len(self.windows) == self.clip.window_count

    def add(
        self, window: DecodedWindow, answers: Mapping[str, Any], encode: float, generate: float
    ) -> WindowCaption:
        """A window's answers, one per prompt (text, or a JSON value where the prompt has a schema).

        `encode` and `generate`: the seconds of the vision encoder and of the rest spent on them.
        """
        assert window.video is not None
        video = window.video
        self.decode_seconds += video.decode_seconds
        self.encode_seconds += encode
        self.generate_seconds += generate
        caption = WindowCaption(
            start=round(video.window.start, 3),
            end=round(video.window.end, 3),
            caption=answer_text(next(iter(answers.values()))),
            frame_count=video.frame_count,
            timestamps=list(video.timestamps),
            answers=dict(answers),
            speech_text=window_speech(window),
        )
        self.windows.append(caption)
        return caption

    def fail(self, error: BaseException) -> None:
        self.error = self.error or error

    def merge(self, found: ClipCaptions) -> None:
        """What another worker found on some windows of the same clip (Ray's actors)."""
        self.windows += found.windows
        self.decode_seconds += found.decode_seconds
        self.encode_seconds += found.encode_seconds
        self.generate_seconds += found.generate_seconds
        if found.error is not None:
            self.fail(found.error)

    def record(self, job: CaptionJob) -> CaptionRecord:
        clip = self.clip
        if self.error is not None:
            return error_record(clip.path, self.error, id=clip.id, **job.record_fields())
        info = clip.info
        assert info is not None
        windows = sorted(self.windows, key=lambda s: s.start)  # Ray's actors answer in any order
        answers = {
            name: _joined([s.answers[name] for s in windows], question.schema)
            for name, question in job.questions.items()
        }
        return CaptionRecord(
            path=clip.path,
            abs_path=os.path.abspath(clip.path),
            id=clip.id,
            status="ok",
            caption="\n".join(s.caption for s in windows),
            answers=answers,
            windows=windows,
            video={**{k: getattr(info, k) for k in VIDEO_FIELDS}, "fingerprint": clip.fingerprint},
            timings={
                "decode": round(clip.seconds + self.decode_seconds, 3),
                "encode": round(self.encode_seconds, 3),
                "generate": round(self.generate_seconds, 3),
                "speech": round(clip.transcript.seconds, 3) if clip.transcript else None,
            },
            speech=clip.transcript.to_dict() if clip.transcript else None,
            **job.record_fields(),
        )


@dataclass(frozen=True)
class WindowAnswered:
    """One window of a clip answered, as `caption_steps` reports it between the clips' records."""

    clip: PlannedClip
    index: int  # which of the clip's windows, from 0
    video: SampledVideo  # the window's frames
    caption: WindowCaption  # what its record will hold about it


def caption_clips(
    model: LoadedModel,
    job: CaptionJob,
    clips: Sequence[str | PlannedClip],
    answerer: Answerer | None = None,
    transcribing: Transcribing | None = None,
) -> Iterator[CaptionRecord]:
    """One record per clip (a path, or a `PlannedClip`), in order, as soon as its last window is answered.

    `job.sampling` should be fitted to the model (`model.loading.load_fitted`), as the engines do.
    """
    for step in caption_steps(model, job, clips, answerer, transcribing):
        if isinstance(step, CaptionRecord):
            yield step


def caption_steps(
    model: LoadedModel,
    job: CaptionJob,
    clips: Sequence[str | PlannedClip],
    answerer: Answerer | None = None,
    transcribing: Transcribing | None = None,
) -> Iterator[WindowAnswered | CaptionRecord]:
    """`caption_clips`' records, each window reported as it is answered (`WindowAnswered`) before them.

    For progress by windows: stopping the iteration between two steps stops the work after the batch
    in flight. With `job.speech` on, each clip is transcribed once, as it is planned, by `transcribing`
    (default: the job's speech model, loaded here); a clip the caller planned keeps its own transcript.
    """
    from .answering import Answerer

    answerer = answerer or Answerer(model, job.generation, job.batch_size)
    open_clips: deque[ClipCaptions] = deque()
    batch: list[tuple[ClipCaptions, DecodedWindow]] = []
    listen = listener(model, job.speech, transcribing)
    workers = job.workers or DEFAULT_WORKERS
    windows = prefetch_windows(clips, job.sampling, workers, preparer(model), listen)
    for window in windows:
        if window.index == 0:
            open_clips.append(ClipCaptions(window.clip))
        clip = open_clips[-1]
        if window.error is not None:
            clip.fail(window.error)
        elif clip.error is None:
            batch.append((clip, window))
        if len(batch) * len(job.questions) >= answerer.batch_size:
            yield from answer_windows(answerer, job, batch)
            batch = []
        yield from finished_records(answerer, job, open_clips)
    yield from answer_windows(answerer, job, batch)
    yield from finished_records(answerer, job, open_clips)


def listener(
    model: LoadedModel, speech: SpeechOptions, transcribing: Transcribing | None = None
) -> Listen | None:
    """What transcribes a clip as it is planned, where speech is on: `transcribing`, or the speech
    model the options name, loaded on the captioning model's device; else None."""
    if not speech.on:
        return None
    if transcribing is None:
        from ..speech.recognizer import load_speech_model

        transcribing = Transcribing(load_speech_model(speech, model.device, model.dtype))
    return transcribing.transcribe


def window_speech(window: DecodedWindow) -> str | None:
    """The text said during the window, where its clip was transcribed; None where speech is off."""
    transcript, video = window.clip.transcript, window.video
    if transcript is None or video is None:
        return None
    return transcript.text_between(video.window.start, video.window.end)


def preparer(model: LoadedModel) -> Prepare | None:
    """What makes a window's pixels on the decoding threads, where the model prepares ahead; else None.

    `model.prepare_ahead` is the device's choice (`smolvlm_video.model.devices`): on CUDA, in pinned memory,
    so preprocessing overlaps generation. The prompt is the same either way: the video keeps its place.
    """
    if not model.prepare_ahead:
        return None
    from ..model.media import prepare_video

    pin = model.device.type == "cuda"  # pinned memory only helps a copy to a GPU
    return functools.partial(prepare_video, model.processor, dtype=model.dtype, pin=pin)


def answer_windows(
    answerer: Answerer, job: CaptionJob, batch: list[tuple[ClipCaptions, DecodedWindow]]
) -> list[WindowAnswered]:
    """Answer every prompt for each window of the batch, and hand each clip its answers or its failure.

    Returns the windows answered, in the batch's order.
    """
    from ..model.media import medium_key  # torch: the model is loaded by now

    live = [(clip, window) for clip, window in batch if clip.error is None]
    if not live:
        return []
    asked = [
        (spoken(question, window, job.speech), [window.video])
        for _, window in live
        for question in job.questions.values()
    ]
    cache = answerer.model.features
    started, encoding = time.perf_counter(), cache.stats.encode_seconds
    answers = answerer.answer(asked, job.system)  # type: ignore[arg-type]
    cache.discard([medium_key(window.video) for _, window in live])  # every prompt about them is answered
    encode = (cache.stats.encode_seconds - encoding) / len(asked)  # each chat's share of the batch's seconds
    generate = (time.perf_counter() - started) / len(asked) - encode
    names, answered = list(job.questions), []
    for number, (clip, window) in enumerate(live):
        mine = answers[number * len(names) : (number + 1) * len(names)]
        failure = next((a for a in mine if isinstance(a, GenerationError)), None)
        if failure is not None:
            clip.fail(failure)
            continue
        values = {name: answer.value for name, answer in zip(names, mine, strict=True)}  # type: ignore[union-attr]
        caption = clip.add(window, values, encode * len(names), generate * len(names))  # type: ignore[arg-type]
        answered.append(WindowAnswered(window.clip, window.index, window.video, caption))  # type: ignore[arg-type]
    return answered


def spoken(question: Question, window: DecodedWindow, speech: SpeechOptions) -> Question:
    """The question as asked of this window: with `--speech prompt`, its transcript before it."""
    text = window_speech(window) if speech.mode == "prompt" else None
    return replace(question, text=speech_question(question.text, text)) if text else question


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
    todo = [(r, name) for r in records if r.status == "ok" and len(r.windows) > 1 for name in job.questions]
    if not todo:
        return
    asked = [(summary_question(job, r, n), ()) for r, n in todo]
    summaries: dict[int, dict[str, Answer | GenerationError]] = {}
    for (record, name), answer in zip(todo, answerer.answer(asked, job.system), strict=True):
        summaries.setdefault(id(record), {})[name] = answer
    for record in records:
        answers = summaries.get(id(record))
        if not answers:
            continue
        failure = next((a for a in answers.values() if isinstance(a, GenerationError)), None)
        if failure is not None:
            record.summary_error = {"type": failure.code, "message": str(failure)}
            continue
        record.answers = {name: answer.value for name, answer in answers.items()}  # type: ignore[union-attr]
        record.caption = answer_text(record.answers[next(iter(job.questions))])
        record.summarized = True


def summary_question(job: CaptionJob, record: CaptionRecord, name: str) -> Question:
    """The summary prompt for one prompt's window captions, with that prompt's schema if it has one."""
    captions = "\n".join(f"{clock(s.start)}: {answer_text(s.answers[name])}" for s in record.windows)
    return Question(SUMMARY_PROMPT.format(captions=captions), job.questions[name].schema)


def _joined(answers: list[Any], schema: JsonSchema | None) -> Any:
    """A prompt's answers over the windows: text joined by lines; JSON values as one, or a list of them."""
    if schema is None:
        return "\n".join(answers)
    return answers[0] if len(answers) == 1 else answers
