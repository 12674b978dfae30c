"""Caption records and the JSONL file that holds them: one record a clip, one line a record.

A record is written whole, straight to the file (no buffer in this process), and reaches the disk
(fsync) within 2 s: at the next write if 2 s have passed since the last sync, else by a timer, so a
record is safe even while the next clip takes minutes. A run killed at any moment loses at most the
clips in flight. A write that fails (a full disk, a quota) is rolled back to the last whole line and
raises OutputError saying how many records are safe; on reopening, a torn last line (from a crash
mid-write) is cut off, so every line in the file parses.

A clip's `id` is the first 16 hex digits of SHA-256 over its absolute path, size and modification
time: stable across reruns and shards, new when the file changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from ..errors import OutputError, RecordsError
from ..model.schemas import SEPARATORS
from ..version import __version__

logger = logging.getLogger(__name__)

FSYNC_EVERY_SECONDS = 2.0  # a written record is on the disk at most this long after it was written

Status = Literal["ok", "error"]


def path_digest(path: str | os.PathLike[str], *facts: object) -> bytes:
    """SHA-256 of the absolute path and any `facts`, NUL-separated: the one hash of clip ids and shards."""
    key = "\0".join([os.path.abspath(path), *map(str, facts)])
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


def clip_id(path: str | os.PathLike[str]) -> str:
    """A stable id for a file: SHA-256 of absolute path, size and mtime (ns), 16 hex digits."""
    stat = os.stat(os.path.abspath(path))
    return path_digest(path, stat.st_size, stat.st_mtime_ns).hex()[:16]


VIDEO_FIELDS = ("duration", "fps", "width", "height", "codec", "rotation")  # a record's `video`, and:
FINGERPRINT_BYTES = 1 << 20  # a fingerprint hashes the first and the last MB of a file


def fingerprint(path: str | os.PathLike[str]) -> str:
    """What a file is, wherever it lies and whatever its time: "<size>:<hash of its first and last MB>".

    A record keeps it in `video.fingerprint`, so an export can tell a source that moved or was touched from
    one whose content changed.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        digest.update(file.read(FINGERPRINT_BYTES))
        if size > FINGERPRINT_BYTES:
            file.seek(max(FINGERPRINT_BYTES, size - FINGERPRINT_BYTES))
            digest.update(file.read(FINGERPRINT_BYTES))
    return f"{size}:{digest.hexdigest()[:32]}"


TIMINGS = (
    "decode",
    "encode",
    "generate",
    "speech",
)  # a record's `timings`, in seconds: encode is the vision encoder


def answer_text(answer: Any) -> str:
    """An answer as text: text as it is, a JSON value (a schema's answer) as the grammar writes it."""
    return (
        answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False, separators=SEPARATORS)
    )


@dataclass
class WindowCaption:
    """The answers about one window of a clip."""

    start: float
    end: float
    caption: str  # the first prompt's answer as text (a schema's answer as its JSON text)
    frame_count: int
    timestamps: list[float]
    answers: dict[str, Any] = field(default_factory=dict)  # prompt name -> text, or a schema's JSON value
    speech_text: str | None = None  # what was said during the window (None: speech was off)


@dataclass
class CaptionRecord:
    """Everything about one clip's captioning: what was done, how, and how it went.

    Every record has every field, with the same types, whatever the mode (one prompt or several,
    with or without schemas, one window or many, ok or error), so any mix of records is one table.
    Only `answers` (and `generation.extra`) hold free-form JSON.
    """

    path: str  # as given
    abs_path: str
    id: str
    status: Status
    # The first prompt's answer as text: over several windows, the windows' answers a line each (the
    # summary's, with --summarize); a schema's answer as its JSON text. None on an error record.
    caption: str | None = None
    # prompt name -> its answer: text (lines over windows), or a schema's JSON value (a list of them over
    # several windows, unless summarized)
    answers: dict[str, Any] = field(default_factory=dict)
    windows: list[WindowCaption] = field(default_factory=list)
    summarized: bool = False  # caption written from the window captions (--summarize)
    summary_error: dict[str, str] | None = None  # type, message: why the summary failed (captions kept)
    model: dict[str, Any] = field(default_factory=dict)  # id, revision
    prompts: list[dict[str, str | None]] = field(default_factory=list)  # name, text, schema (JSON text)
    system: str | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)
    video: dict[str, Any] = field(default_factory=lambda: dict.fromkeys((*VIDEO_FIELDS, "fingerprint")))
    timings: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(TIMINGS))
    # What was said over the sampled span: {language, segments: [{start, end, text}], error}; None where
    # speech was off. A clip without audio has no segments; one whose audio fails to decode, an error.
    speech: dict[str, Any] | None = None
    error: dict[str, str] | None = None  # type, message
    tool_version: str = __version__
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> CaptionRecord:
        """A record from its JSON form (as `to_json` writes it)."""
        windows = [WindowCaption(**window) for window in fields.get("windows", [])]
        return cls(**{**fields, "windows": windows})

    @classmethod
    def from_json(cls, line: str) -> CaptionRecord:
        """A record from one line of JSON."""
        return cls.from_dict(json.loads(line))

    def to_json(self, indent: int | None = None) -> str:
        """The record as one line of JSON (no newline), or indented by `indent` spaces for people."""
        separators = (",", ":") if indent is None else None
        return json.dumps(asdict(self), ensure_ascii=False, separators=separators, indent=indent)


def error_record(path: str, error: BaseException, **fields: Any) -> CaptionRecord:
    """A record for a clip that failed: the error's stable code and its message."""
    code = getattr(error, "code", type(error).__name__)
    return CaptionRecord(
        path=path,
        abs_path=os.path.abspath(path),
        id=fields.pop("id", None) or safe_clip_id(path),
        status="error",
        error={"type": code, "message": str(error)},
        **fields,
    )


def safe_clip_id(path: str) -> str:
    """clip_id, or for a file that cannot be stat'ed (missing, no permission) a hash of its absolute path."""
    try:
        return clip_id(path)
    except OSError:
        return path_digest(path).hex()[:16]


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


def read_journal(path: str | os.PathLike[str]) -> Iterator[tuple[int, Any]]:
    """(line number from 1, JSON value) for each line of the JSONL at `path`, while a run may append to it.

    A last line with no newline that does not parse is a write in progress or cut short: it ends the
    reading, with a warning. Any other line that is not JSON raises RecordsError naming the file and line.
    """
    file = Path(path)
    try:
        lines = open(file, encoding="utf-8", errors="surrogateescape")  # noqa: SIM115 (closed below)
    except OSError as error:
        raise RecordsError(f"{file}: cannot read the records ({error.strerror or error}).") from error
    with lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                if not line.endswith("\n"):
                    logger.warning("%s: line %d is cut short (a write in progress?); skipped.", file, number)
                    return
                raise RecordsError(f"{file}, line {number}: not JSON ({error.msg}).") from error
            yield number, record


class JsonlWriter:
    """Appends records to a JSONL file, one whole line at a time, each on the disk within 2 s."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.exists():
            _cut_torn_tail(self.path)
        self.lines = _count_lines(self.path)  # whole records in the file, those before this run too
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        self._lock = threading.Lock()
        self._synced = time.monotonic()
        self._timer: threading.Timer | None = None
        self._failed: OutputError | None = None  # a sync by the timer that failed

    def write(self, record: CaptionRecord) -> None:
        """Append one record; raises OutputError, with the file as it was before, if it cannot be."""
        data = (record.to_json() + "\n").encode("utf-8")
        with self._lock:
            if self._failed is not None:
                raise self._failed
            size = os.fstat(self._fd).st_size
            try:
                _write_all(self._fd, data)
            except OSError as error:
                self._roll_back(size)
                raise self._error(error) from error
            self.lines += 1
            if time.monotonic() - self._synced >= FSYNC_EVERY_SECONDS:
                self._sync()
            elif self._timer is None:
                self._timer = threading.Timer(FSYNC_EVERY_SECONDS, self._timed_sync)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Put what was written on the disk now."""
        with self._lock:
            if self._fd >= 0:
                self._sync()

    def _timed_sync(self) -> None:
        try:
            self.flush()
        except OutputError as error:  # raised to the writer's caller at its next write or close
            self._failed = error

    def _sync(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            os.fsync(self._fd)
        except OSError as error:
            raise self._error(error) from error
        self._synced = time.monotonic()

    def _roll_back(self, size: int) -> None:
        """Cut a partly written line off, so every line in the file stays whole."""
        try:
            os.ftruncate(self._fd, size)
        except OSError as error:
            logger.warning("Could not cut a torn line off %s (%s); the next run cuts it.", self.path, error)

    def _error(self, error: OSError) -> OutputError:
        return OutputError(
            f"Cannot write to {self.path}: {error.strerror or error}. The {self.lines} records in it "
            "are safe; make room (or write elsewhere) and run again to resume from where it stopped."
        )

    read = staticmethod(read_journal)  # export reads the records through it

    @staticmethod
    def done_ids(path: str | os.PathLike[str], retry_errors: bool = True) -> set[str]:
        """The ids of the clips a rerun skips (see `finished_ids`)."""
        return finished_ids(path, retry_errors)

    def close(self) -> None:
        with self._lock:
            if self._fd < 0:
                return
            try:
                self._sync()
            finally:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is None:
            self.close()
            return
        try:  # an error is on its way out already: let it be the one the caller sees
            self.close()
        except OutputError as error:
            logger.warning("%s", error)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as file:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))


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
