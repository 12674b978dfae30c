"""Subtitles from a caption record, as SRT or WebVTT: a cue per window (per shot with --split scenes),
a cue per segment of speech, or both in time order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import OutputError
from .records import CaptionRecord, WindowCaption, answer_text


def _stamp(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _text(window: WindowCaption) -> str:
    """The cue's text: the caption, or with several prompts a line per prompt's answer."""
    text = window.caption
    if len(window.answers) > 1:
        text = "\n".join(f"{name}: {answer_text(value)}" for name, value in window.answers.items())
    return _lines(text)  # a blank line would end the cue early in both formats


SubtitleSource = Literal["captions", "speech", "both"]
SUBTITLE_SOURCES: tuple[str, ...] = ("captions", "speech", "both")


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def cues(record: CaptionRecord, source: SubtitleSource = "captions") -> list[Cue]:
    """The record's cues from `source`, in time order: the windows' captions, the segments of speech
    (none where the record has no speech), or both."""
    found = []
    if source in ("captions", "both"):
        found += [Cue(w.start, w.end, _text(w)) for w in record.windows]
    if source in ("speech", "both"):
        segments = (record.speech or {}).get("segments") or []
        found += [Cue(s["start"], max(s["end"], s["start"] + 0.001), _lines(s["text"])) for s in segments]
    return sorted(found, key=lambda cue: (cue.start, cue.end))


def _lines(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if line.strip()) or "..."


def to_srt(cues: Sequence[Cue]) -> str:
    """SubRip text: numbered cues with HH:MM:SS,mmm times."""
    lines = [
        f"{number}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n{c.text}\n"
        for number, c in enumerate(cues, start=1)
    ]
    return "\n".join(lines)


def to_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT text: a header, then cues with HH:MM:SS.mmm times."""
    lines = [f"{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}\n{c.text}\n" for c in cues]
    return "WEBVTT\n\n" + "\n".join(lines)


WRITERS = {"srt": to_srt, "vtt": to_vtt}


def write_subtitles(
    record: CaptionRecord, folder: Path, kind: str, source: SubtitleSource = "captions"
) -> Path:
    """<clip name>.<id8>.<srt|vtt> in `folder`, its cues from `source`: the id keeps clips of the same
    name apart."""
    path = folder / f"{Path(record.path).stem}.{record.id[:8]}.{kind}"
    try:
        path.write_text(WRITERS[kind](cues(record, source)), encoding="utf-8")
    except OSError as error:
        raise OutputError(f"Cannot write the subtitles {path}: {error.strerror or error}.") from error
    return path
