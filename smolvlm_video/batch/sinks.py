"""Where a run's records go: a sink writes each record, and knows which clips it already holds.

A sink is a class: made with the output path, it has `write`, `flush` and `close`, is a context manager
(leaving it closes the sink; where an error is already on its way out, that error stays the one raised), and
its `done_ids` (a static method) reads the ids a rerun skips, which is how a run resumes, and its `read` the
records back, which is how `export` takes them. `SINKS` names them; `CaptionRun.sink` and
`ExportOptions.sink` pick one. JSONL (`records.JsonlWriter`) is the run's journal: each record a whole line,
on the disk within 2 s. A new format is a module with its class and one line in `SINKS`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from .records import JsonlWriter

if TYPE_CHECKING:
    from .records import CaptionRecord


class Sink(Protocol):
    """What a run writes its records through."""

    def write(self, record: CaptionRecord) -> None:
        """Keep one record; raise OutputError, keeping every record before it, if it cannot be."""

    def flush(self) -> None:
        """Make what was written durable now."""

    def close(self) -> None:
        """Flush, and let the output go."""

    def __enter__(self) -> Sink: ...

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None: ...


class SinkType(Protocol):
    """A sink's class: opened on an output path, and able to list the clips an output already holds."""

    def __call__(self, path: str | os.PathLike[str]) -> Sink: ...

    def done_ids(self, path: str | os.PathLike[str], retry_errors: bool = True) -> set[str]: ...

    def read(self, path: str | os.PathLike[str]) -> Iterator[tuple[int, Any]]:
        """(position from 1, record as JSON values) for each record, while a run may still write more.

        Raises RecordsError naming the file and position where a record cannot be read.
        """


SINKS: dict[str, SinkType] = {"jsonl": JsonlWriter}
