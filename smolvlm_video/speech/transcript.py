"""A clip's transcript: its audio read once, gated, the voiced spans recognized; each window's share.

Torch-free, as the planning of clips is (`batch.prefetch`): a planned clip carries its transcript.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, TypeVar

from ..errors import SmolVLMVideoError
from .audio import read_audio
from .gate import VoicedSpan, voiced_spans
from .options import SPEECH_PROMPT

Part = TypeVar("Part")  # a turn's part: its text (str), or a medium


@dataclass(frozen=True)
class Segment:
    """What was said from `start` to `end` (seconds into the video)."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Transcript:
    """What was said in a clip's sampled span: its segments, their language, or why there are none.

    A clip without audio has no segments and no error; one whose audio cannot be decoded has an error.
    """

    segments: tuple[Segment, ...] = ()
    language: str | None = None
    error: dict[str, str] | None = None  # type, message
    seconds: float = 0.0  # reading, gating and recognizing (the record's `timings.speech`)

    def to_dict(self) -> dict[str, Any]:
        """As a record holds it: `{language, segments: [{start, end, text}], error}`."""
        return {
            "language": self.language,
            "segments": [asdict(s) for s in self.segments],
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> Transcript:
        segments = tuple(Segment(**segment) for segment in fields.get("segments") or ())
        return cls(segments, fields.get("language"), fields.get("error"))

    def text_between(self, start: float, end: float) -> str:
        """The text of the segments that overlap [start, end], in order, a space between them."""
        return " ".join(s.text for s in self.segments if s.start < end and s.end > start)


class Recognizer(Protocol):
    """What turns voiced spans into segments: `recognizer.SpeechModel`, Whisper through transformers."""

    def recognize(self, spans: Iterable[VoicedSpan]) -> tuple[list[Segment], str | None]: ...


class Transcribing:
    """Transcribes clips with one speech model, one clip at a time (the decoding threads share it);
    `clips` counts the clips transcribed."""

    def __init__(self, model: Recognizer) -> None:
        self.model = model
        self.clips = 0
        self._lock = threading.Lock()

    def transcribe(
        self, path: str | os.PathLike[str], start: float | None = None, end: float | None = None
    ) -> Transcript:
        """The clip's transcript from `start` to `end` (seconds; None: its own ends). Its audio's problems
        (a damaged stream) are the transcript's error, never the caller's; no audio stream, no segments."""
        with self._lock:
            started = time.perf_counter()
            self.clips += 1
            try:
                segments, language = self.model.recognize(voiced_spans(read_audio(path, start, end)))
            except SmolVLMVideoError as error:
                error_fields = {"type": error.code, "message": str(error)}
                return Transcript(error=error_fields, seconds=time.perf_counter() - started)
            return Transcript(tuple(segments), language, seconds=time.perf_counter() - started)


def speech_question(question: str, speech: str) -> str:
    """The question as `--speech prompt` asks it: the window's transcript before it, as user text."""
    return SPEECH_PROMPT.format(speech=speech, question=question) if speech else question


def with_speech(parts: Sequence[Part], said: str) -> list[Part]:
    """A user turn's parts with `said` before its question (`speech_question` on its last text), or after
    its media where it has no text. Unchanged where nothing was said."""
    if not said:
        return list(parts)
    texts = [index for index, part in enumerate(parts) if isinstance(part, str)]
    if not texts:
        return [*parts, speech_question("", said).rstrip()]  # type: ignore[list-item]
    last = texts[-1]
    return [*parts[:last], speech_question(parts[last], said), *parts[last + 1 :]]  # type: ignore[arg-type, list-item]
