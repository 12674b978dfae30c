"""Read a `caption` JSONL as export needs it: streaming, line by line, each line a record or an error.

The JSONL is the run's journal, and export may read it while a run still appends to it. A last line with
no newline that does not parse is the remains of a write in progress or cut short: it is skipped, with a
warning, as resume does. Any other line that is not a caption record stops the export with a
`RecordsError` that names the file and the line. Blank lines are skipped.

`survey` reads the file once before anything is written: it checks every line, and gathers what the
tables' types depend on (each prompt's schemas, whether every answer fits them) and what the dataset
card says (models, prompts, sampling, counts).
"""

from __future__ import annotations

import array
import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..batch.sinks import SINKS
from ..errors import RecordsError
from .answers import TEXT, Column, as_json, schema_column

logger = logging.getLogger(__name__)

REQUIRED = ("id", "path", "status")  # what a line must have to be a caption record


def read_journal(path: str | os.PathLike[str], sink: str = "jsonl") -> Iterator[tuple[int, dict[str, Any]]]:
    """(position from 1, record) for each record at `path`, read by the sink that wrote it (`SINKS`)."""
    file = Path(path)
    for number, record in SINKS[sink].read(path):
        yield number, _checked(record, file, number)


def _checked(record: Any, file: Path, number: int) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise RecordsError(f"{file}, line {number}: a JSON {type(record).__name__}, not a caption record.")
    if missing := [key for key in REQUIRED if not isinstance(record.get(key), str)]:
        raise RecordsError(
            f"{file}, line {number}: not a caption record (no {', '.join(missing)}); "
            "export reads the JSONL that `smolvlm-video caption` writes."
        )
    if record["status"] == "ok" and not isinstance(record.get("windows"), list):
        raise RecordsError(f"{file}, line {number}: an ok record without its windows.")
    for index, window in enumerate(record.get("windows") or []):
        if not isinstance(window, dict) or not all(_seconds(window.get(key)) for key in ("start", "end")):
            raise RecordsError(f"{file}, line {number}: window {index} has no start and end in seconds.")
    return record


def _seconds(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def prompt_schemas(record: dict[str, Any]) -> dict[str, str | None]:
    """A record's prompts: name -> its schema's JSON text, or None for a prompt answered in text."""
    prompts = record.get("prompts")
    if prompts and isinstance(prompts, list) and all(isinstance(p, dict) and "name" in p for p in prompts):
        return {p["name"]: p.get("schema") for p in prompts}
    return dict.fromkeys(record.get("answers") or {})  # records older than prompt lists


@dataclass
class Counts:
    """How many records, videos, windows and errors: what the card and the command's summary say."""

    records: int = 0
    ok: int = 0
    windows: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # error type -> records
    models: Counter[str] = field(default_factory=Counter)  # model id -> records
    samplings: Counter[str] = field(default_factory=Counter)  # each sampling, as JSON text -> records

    def add(self, record: dict[str, Any]) -> None:
        self.records += 1
        self.models[str((record.get("model") or {}).get("id"))] += 1
        self.samplings[json.dumps(record.get("sampling"), sort_keys=True)] += 1
        if record["status"] == "ok":
            self.ok += 1
            self.windows += len(record["windows"])
        else:
            self.errors[str((record.get("error") or {}).get("type"))] += 1


@dataclass
class Survey:
    """What one pass over a records file found: what the tables' types need, and which records to keep.

    A clip retried after an error has two records, the error and then the new one: only the last record of
    each clip id is kept (`superseded` holds the lines of the others).
    """

    lines: int = 0  # records read
    last_line: int = 0  # the line of the last record read: a second pass reads no further
    schemas: dict[str, set[str | None]] = field(default_factory=dict)  # prompt -> the schemas it came with
    texts: dict[str, set[str]] = field(default_factory=dict)  # prompt -> its texts
    unfit: dict[str, int] = field(default_factory=dict)  # prompt -> first line whose answer missed its type
    superseded: set[int] = field(
        default_factory=set
    )  # lines of records that a later one of their clip replaces
    sources_root: str | None = None  # the folder that holds every record's source, as captioned
    _keys: array.array = field(default_factory=lambda: array.array("Q"))  # each record's clip id, as 64 bits
    _numbers: array.array = field(default_factory=lambda: array.array("Q"))  # and its line
    _columns: dict[str | None, Column] = field(default_factory=dict)

    @property
    def records(self) -> int:
        """The records an export keeps: one per clip id."""
        return self.lines - len(self.superseded)

    def add(self, number: int, record: dict[str, Any]) -> None:
        self.lines += 1
        self.last_line = number
        self._keys.append(_id_key(record["id"]))
        self._numbers.append(number)
        folder = os.path.dirname(source_path(record))
        root = self.sources_root
        if root is None or not (folder == root or folder.startswith(root.rstrip(os.sep) + os.sep)):
            self.sources_root = folder if root is None else _common(root, folder)
        prompts = prompt_schemas(record)
        for prompt in record.get("prompts") or []:
            if isinstance(prompt, dict) and isinstance(prompt.get("text"), str):
                self.texts.setdefault(prompt["name"], set()).add(prompt["text"])
        for name, schema in prompts.items():
            self.schemas.setdefault(name, set()).add(schema)
        for window in record.get("windows") or [] if record["status"] == "ok" else []:
            answers = window.get("answers") or {}
            for name, schema in prompts.items():
                if name not in self.unfit and not self._column(schema).fits(answers.get(name)):
                    self.unfit[name] = number

    def finish(self) -> None:
        """Find the records that a later record of the same clip replaces (a retried error)."""
        keys, numbers = np.frombuffer(self._keys, np.uint64), np.frombuffer(self._numbers, np.uint64)
        order = np.argsort(keys, kind="stable")  # a clip's records stay in the order of their lines
        repeated = keys[order][:-1] == keys[order][1:]  # a record followed by one of the same clip
        self.superseded = set(numbers[order][:-1][repeated].tolist())

    def _column(self, schema: str | None) -> Column:
        if schema not in self._columns:
            self._columns[schema] = TEXT if schema is None else schema_column(_parsed(schema), "")
        return self._columns[schema]

    def answer_columns(self) -> dict[str, Column]:
        """Each prompt's column in the windows table, in the order the prompts were first seen."""
        columns = {}
        for name, schemas in self.schemas.items():
            if len(schemas) > 1:
                columns[name] = as_json(name, "the prompt came with different schemas in different runs")
            elif name in self.unfit:
                columns[name] = as_json(name, f"answers that do not fit its schema (line {self.unfit[name]})")
            else:
                schema = next(iter(schemas))
                columns[name] = TEXT if schema is None else schema_column(_parsed(schema), name)
        return columns


def source_path(record: dict[str, Any]) -> str:
    """Where a record's source was, as an absolute path."""
    return record.get("abs_path") or os.path.abspath(record["path"])


def _common(first: str, second: str) -> str:
    try:
        return os.path.commonpath([first, second])
    except ValueError:  # Windows: sources on two drives have no folder in common
        return ""


def _parsed(schema: str) -> Any:
    try:
        return json.loads(schema)
    except (TypeError, json.JSONDecodeError):
        return None  # typed as JSON text: "the schema is not an object"


def survey(path: str | os.PathLike[str], sink: str = "jsonl") -> Survey:
    """Read every record of the file once (raising RecordsError at the first bad line)."""
    found = Survey()
    for number, record in read_journal(path, sink):
        found.add(number, record)
    found.finish()
    return found


def _id_key(clip_id: str) -> int:
    """A clip id as 64 bits: its 16 hex digits as they are, any other id hashed."""
    try:
        return int(clip_id, 16) if len(clip_id) == 16 else _hashed(clip_id)
    except ValueError:
        return _hashed(clip_id)


def _hashed(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=8).digest())
