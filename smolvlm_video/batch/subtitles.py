"""Subtitles from a caption record: one cue per window (per shot with --split scenes), as SRT or WebVTT."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import OutputError
from .records import CaptionRecord, Segment


def _stamp(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _text(caption: Any) -> str:
    if isinstance(caption, dict):
        caption = "\n".join(f"{name}: {_plain(value)}" for name, value in caption.items())
    # A blank line would end the cue early in both formats.
    return "\n".join(line for line in _plain(caption).splitlines() if line.strip()) or "..."


def _plain(answer: Any) -> str:
    """Text as it is; a JSON value (a schema's answer) as compact JSON."""
    return answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)


def to_srt(segments: Sequence[Segment]) -> str:
    """SubRip text: numbered cues with HH:MM:SS,mmm times."""
    cues = [
        f"{number}\n{_stamp(s.start, ',')} --> {_stamp(s.end, ',')}\n{_text(s.caption)}\n"
        for number, s in enumerate(segments, start=1)
    ]
    return "\n".join(cues)


def to_vtt(segments: Sequence[Segment]) -> str:
    """WebVTT text: a header, then cues with HH:MM:SS.mmm times."""
    cues = [f"{_stamp(s.start, '.')} --> {_stamp(s.end, '.')}\n{_text(s.caption)}\n" for s in segments]
    return "WEBVTT\n\n" + "\n".join(cues)


WRITERS = {"srt": to_srt, "vtt": to_vtt}


def write_subtitles(record: CaptionRecord, folder: Path, kind: str) -> Path:
    """<clip name>.<id8>.<srt|vtt> in `folder`: the id keeps clips of the same name apart."""
    path = folder / f"{Path(record.path).stem}.{record.id[:8]}.{kind}"
    try:
        path.write_text(WRITERS[kind](record.segments), encoding="utf-8")
    except OSError as error:
        raise OutputError(f"Cannot write the subtitles {path}: {error.strerror or error}.") from error
    return path
