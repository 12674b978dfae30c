"""Subtitles from a caption record: one cue per window (per shot with --split scenes), as SRT or WebVTT."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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
    # A blank line would end the cue early in both formats.
    return "\n".join(line for line in text.splitlines() if line.strip()) or "..."


def to_srt(windows: Sequence[WindowCaption]) -> str:
    """SubRip text: numbered cues with HH:MM:SS,mmm times."""
    cues = [
        f"{number}\n{_stamp(s.start, ',')} --> {_stamp(s.end, ',')}\n{_text(s)}\n"
        for number, s in enumerate(windows, start=1)
    ]
    return "\n".join(cues)


def to_vtt(windows: Sequence[WindowCaption]) -> str:
    """WebVTT text: a header, then cues with HH:MM:SS.mmm times."""
    cues = [f"{_stamp(s.start, '.')} --> {_stamp(s.end, '.')}\n{_text(s)}\n" for s in windows]
    return "WEBVTT\n\n" + "\n".join(cues)


WRITERS = {"srt": to_srt, "vtt": to_vtt}


def write_subtitles(record: CaptionRecord, folder: Path, kind: str) -> Path:
    """<clip name>.<id8>.<srt|vtt> in `folder`: the id keeps clips of the same name apart."""
    path = folder / f"{Path(record.path).stem}.{record.id[:8]}.{kind}"
    try:
        path.write_text(WRITERS[kind](record.windows), encoding="utf-8")
    except OSError as error:
        raise OutputError(f"Cannot write the subtitles {path}: {error.strerror or error}.") from error
    return path
