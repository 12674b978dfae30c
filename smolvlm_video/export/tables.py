"""The two tables an export writes: their types, and the rows of each record.

- `clips`: one row per record (the latest of each clip), errors included, flat: a record's nested facts
  (error, model, sampling, generation, video, timings) become columns named `<group>_<field>`, typed as the
  options and `VideoInfo` declare them. `answers` (over a clip's windows, its shape depends on how many
  there are) and `generation_extra` (any `generate()` argument) are free-form, so stored as JSON text.
- `windows`: one row per window of every ok clip, with its clip's id and path, its span, caption, frames,
  and `answers`: a struct of one typed column per prompt (see `answers`). With cut clips, also the clip's
  file (`cut_path`, relative to the export's folder) and its facts (`cut_frames`, `cut_fps`, `cut_bytes`,
  `cut_has_audio`, `cut_audio`), or why it has none (`cut_error_type`, `_message`).

Every column has one type whatever the records hold, so any mix of runs is one table. A row is handed to
PyArrow as the record's own dict (PyArrow converts in C++ and ignores keys the table has not); only the JSON
text columns are made here.
"""

from __future__ import annotations

import os
import types
import typing
from dataclasses import fields
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..batch.records import TIMINGS, VIDEO_FIELDS
from ..options import GenerationOptions, SamplingOptions
from ..video.probe import VideoInfo
from .answers import Column, json_text
from .features import VIDEO
from .reading import source_path

TEXT = pa.string()
ERROR = pa.struct([("type", TEXT), ("message", TEXT)])
PYTHON_TYPES = {int: pa.int64(), float: pa.float64(), bool: pa.bool_(), str: TEXT}
SEGMENT = pa.struct([("start", pa.float64()), ("end", pa.float64()), ("text", TEXT)])  # said, and when
SPEECH = pa.struct([("language", TEXT), ("segments", pa.list_(SEGMENT)), ("error", ERROR)])  # null: off


def _arrow_type(hint: Any) -> pa.DataType:
    """The type of a dataclass field: int, float, bool or str (or None of them); anything else JSON text."""
    arguments = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return _arrow_type(arguments[0]) if len(arguments) == 1 else TEXT
    return PYTHON_TYPES.get(hint, TEXT)


def _struct(cls: type, names: tuple[str, ...] | None = None) -> pa.StructType:
    hints = typing.get_type_hints(cls)
    return pa.struct(
        [(f.name, _arrow_type(hints[f.name])) for f in fields(cls) if names is None or f.name in names]
    )


# The clips table as the records nest it; written flat (`error.type` becomes `error_type`).
CLIPS = pa.schema(
    [
        ("id", TEXT),
        ("path", TEXT),
        ("abs_path", TEXT),
        ("status", TEXT),
        ("error", ERROR),
        ("caption", TEXT),
        ("answers", TEXT),  # JSON text
        ("window_count", pa.int64()),
        ("summarized", pa.bool_()),
        ("summary_error", ERROR),
        ("model", pa.struct([("id", TEXT), ("revision", TEXT)])),
        ("prompts", pa.list_(pa.struct([("name", TEXT), ("text", TEXT), ("schema", TEXT)]))),
        ("system", TEXT),
        ("sampling", _struct(SamplingOptions)),
        ("generation", _struct(GenerationOptions)),  # extra: JSON text
        ("video", pa.struct([*_struct(VideoInfo, VIDEO_FIELDS), ("fingerprint", TEXT)])),
        ("timings", pa.struct([(name, pa.float64()) for name in TIMINGS])),
        ("speech", SPEECH),
        ("tool_version", TEXT),
        ("created_at", TEXT),
    ]
)
CUT_FIELDS = [
    ("cut_path", TEXT),  # a `Video` in the Parquet tables (`window_schema`), a path in WebDataset samples
    ("cut_error_type", TEXT),
    ("cut_error_message", TEXT),
    # The facts of the clip file itself, read from it: frames, frame rate, bytes, whether it has audio, and
    # a note where its audio is not the source's whole ("dropped: ...", "gaps: N damaged packets skipped").
    ("cut_frames", pa.int64()),
    ("cut_fps", pa.float64()),
    ("cut_bytes", pa.int64()),
    ("cut_has_audio", pa.bool_()),
    ("cut_audio", TEXT),
]


def clips_schema(keep_abs_paths: bool) -> pa.Schema:
    """The clips table, with `abs_path` or (the default, for a table to publish) without it."""
    return CLIPS if keep_abs_paths else CLIPS.remove(CLIPS.get_field_index("abs_path"))


def clips_columns(keep_abs_paths: bool) -> pa.Schema:
    """The clips table as written: flat (see `flat`)."""
    return flat(clips_schema(keep_abs_paths).empty_table()).schema


def published(record: dict[str, Any], base: str, keep_abs_paths: bool) -> dict[str, Any]:
    """The record as the tables show it: `path` relative to the folder `base` (with / between its parts),
    and no `abs_path` unless kept. A source outside `base` keeps its path as captioned."""
    source = source_path(record)
    inside = base.rstrip(os.sep) + os.sep
    if base and source.startswith(inside):  # the common case, without relpath's cost
        path = source[len(inside) :].replace(os.sep, "/")
    else:
        relative = os.path.relpath(source, base) if base else source
        path = record["path"] if relative.startswith("..") else Path(relative).as_posix()
    shown = {**record, "path": path}
    if not keep_abs_paths:
        shown.pop("abs_path", None)
    return shown


def clip_row(record: dict[str, Any]) -> dict[str, Any]:
    """A record as the clips table reads it (nested, as `CLIPS`)."""
    generation = record.get("generation")
    if isinstance(generation, dict) and "extra" in generation:
        generation = {**generation, "extra": json_text(generation["extra"])}
    answers = record.get("answers")
    return {
        **record,
        "answers": json_text(answers) if answers is not None else None,
        "window_count": len(record.get("windows") or []),
        "generation": generation,
    }


def flat(table: pa.Table) -> pa.Table:
    """The clips table as written: each group's fields as columns of their own, `<group>_<field>`."""
    table = table.flatten()
    return table.rename_columns([name.replace(".", "_") for name in table.column_names])


def _window_fields(answers: Column) -> list[tuple[str, pa.DataType]]:
    return [
        ("clip_id", TEXT),
        ("window_index", pa.int64()),
        ("path", TEXT),
        ("start", pa.float64()),
        ("end", pa.float64()),
        ("caption", TEXT),
        ("frame_count", pa.int64()),
        ("timestamps", pa.list_(pa.float64())),
        ("speech_text", TEXT),  # null where speech was off
        ("answers", answers.arrow),
    ]


def window_schema(answers: Column, cut: bool) -> pa.Schema:
    """The windows table, for this answers column (a struct of the prompts'), with cut clips or not (their
    files as `datasets.Video`)."""
    cuts = [(name, VIDEO if name == "cut_path" else type_) for name, type_ in CUT_FIELDS]
    return pa.schema([*_window_fields(answers), *(cuts if cut else [])])


def table_row(window: dict[str, Any]) -> dict[str, Any]:
    """A window's row as the windows table stores it: its clip file as a `Video` (`{bytes, path}`)."""
    path = window.get("cut_path")
    return {**window, "cut_path": {"bytes": None, "path": path}} if path else window


def sample_schema(answers: Column, cut: bool) -> pa.Schema:
    """A WebDataset sample as `datasets` reads it: its `.json` (the window's row, and its clip's model and
    video facts), `.txt` (the caption), `.mp4` with cut clips (a `Video`), and the key and shard of each."""
    document = [
        *_window_fields(answers),
        *(CUT_FIELDS if cut else []),
        ("model", CLIPS.field("model").type),
        ("video", CLIPS.field("video").type),
    ]
    clip = [("mp4", VIDEO)] if cut else []
    return pa.schema(
        [("json", pa.struct(document)), ("txt", TEXT), *clip, ("__key__", TEXT), ("__url__", TEXT)]
    )


def window_rows(record: dict[str, Any], answers: Column | None) -> list[dict[str, Any]]:
    """A record's windows as the windows table reads them: each with its clip's id and path, its place,
    and its answers as `answers` stores them (None: as JSON values, as the record has them)."""
    convert = answers.convert if answers is not None and answers.converts else None
    rows = []
    for index, window in enumerate(record.get("windows") or []):
        row = {**window, "clip_id": record["id"], "path": record["path"], "window_index": index}
        if convert is not None:
            row["answers"] = convert(window.get("answers"))
        rows.append(row)
    return rows


def sample_json(window: dict[str, Any], record: dict[str, Any], schema: pa.Schema) -> str:
    """A window as one JSON document (a WebDataset sample's `.json`): the fields `schema` (`sample_schema`)
    declares, from its row and its clip's model and video facts."""
    document = schema.field("json").type
    facts = {name: record.get(name) or {} for name in ("model", "video")}
    values = {
        field.name: (
            {key.name: facts[field.name].get(key.name) for key in field.type}
            if field.name in facts
            else window.get(field.name)
        )
        for field in document
    }
    return json_text(values) or ""
