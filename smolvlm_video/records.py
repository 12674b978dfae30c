"""Caption records and the JSONL file that holds them: one record a clip, one line a record.

A record is written whole in a single write, flushed at once and fsynced at least every few seconds,
so a run killed at any moment loses at most the clips in flight. On reopening, a torn last line (from
a crash mid-write) is cut off, so every line in the file parses.

A clip's `id` is the first 16 hex digits of SHA-256 over its absolute path, size and modification
time: stable across reruns and shards, new when the file changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from . import __version__

FSYNC_EVERY_SECONDS = 2.0

Status = Literal["ok", "error"]


def clip_id(path: str | os.PathLike[str]) -> str:
    """A stable id for a file: SHA-256 of absolute path, size and mtime (ns), 16 hex digits."""
    absolute = os.path.abspath(path)
    stat = os.stat(absolute)
    key = f"{absolute}\0{stat.st_size}\0{stat.st_mtime_ns}"
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]


@dataclass
class Segment:
    """The caption of one window of a clip."""

    start: float
    end: float
    caption: str | dict[str, str]
    frame_count: int
    timestamps: list[float]


@dataclass
class CaptionRecord:
    """Everything about one clip's captioning: what was done, how, and how it went."""

    path: str  # as given
    abs_path: str
    id: str
    status: Status
    caption: str | dict[str, str] | None = None  # one answer, or prompt name -> answer
    segments: list[Segment] = field(default_factory=list)
    summarized: bool = False  # caption written from the segment captions (--summarize)
    model: dict[str, Any] = field(default_factory=dict)  # id, revision
    prompts: dict[str, str] = field(default_factory=dict)  # prompt name -> prompt text
    system: str | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)
    video: dict[str, Any] = field(default_factory=dict)  # duration, fps, width, height, codec
    timings: dict[str, float] = field(default_factory=dict)  # seconds: decode, generate
    error: dict[str, str] | None = None  # type, message
    tool_version: str = __version__
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> CaptionRecord:
        """A record from its JSON form (as `to_json` writes it)."""
        segments = [Segment(**segment) for segment in fields.get("segments", [])]
        return cls(**{**fields, "segments": segments})

    def to_json(self) -> str:
        """The record as one line of JSON (no newline)."""
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))


def error_record(path: str, error: BaseException, **fields: Any) -> CaptionRecord:
    """A record for a clip that failed: the error's stable code and its message."""
    code = getattr(error, "code", type(error).__name__)
    return CaptionRecord(
        path=path,
        abs_path=os.path.abspath(path),
        id=fields.pop("id", None) or _safe_id(path),
        status="error",
        error={"type": code, "message": str(error)},
        **fields,
    )


def _safe_id(path: str) -> str:
    try:
        return clip_id(path)
    except OSError:
        return hashlib.sha256(os.path.abspath(path).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _cut_torn_tail(path: Path) -> None:
    """Drop a last line that has no newline: the remains of a write cut short by a crash."""
    with open(path, "rb+") as file:
        file.seek(0, os.SEEK_END)
        size = file.tell()
        if size == 0:
            return
        file.seek(size - 1)
        if file.read(1) == b"\n":
            return
        step = min(size, 1 << 16)
        file.seek(size - step)
        tail = file.read(step)
        cut = tail.rfind(b"\n")
        file.truncate(size - step + cut + 1 if cut >= 0 else 0)


class JsonlWriter:
    """Appends records to a JSONL file, one flushed line at a time."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.exists():
            _cut_torn_tail(self.path)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())
        self._synced = time.monotonic()

    def write(self, record: CaptionRecord) -> None:
        self._file.write(record.to_json() + "\n")
        self._file.flush()
        if time.monotonic() - self._synced >= FSYNC_EVERY_SECONDS:
            self.sync()

    def sync(self) -> None:
        os.fsync(self._file.fileno())
        self._synced = time.monotonic()

    def close(self) -> None:
        if not self._file.closed:
            self.sync()
            self._file.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_records(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The records of a JSONL file as dicts; lines that do not parse are skipped."""
    file = Path(path)
    if not file.exists():
        return
    with open(file, encoding="utf-8") as lines:
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "id" in record:
                yield record


def finished_ids(path: str | os.PathLike[str], retry_errors: bool = True) -> set[str]:
    """Ids to skip on a rerun: those already ok, and those in error unless errors are retried."""
    done: dict[str, str] = {}
    for record in read_records(path):
        if done.get(record["id"]) != "ok":
            done[record["id"]] = record.get("status", "error")
    return {key for key, status in done.items() if status == "ok" or not retry_errors}
