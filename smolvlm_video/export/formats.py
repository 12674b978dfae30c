"""The export formats, one writer class each, named in one table (`WRITERS`).

A writer is made with the staging folder, the export's options and the windows' answers column; it takes
each published record with its window rows (`add`), and on `close` finishes its files and returns their
names in the staging folder, to be moved into place. `paths` lists what it replaces, known before it runs
(shards get new names each time). A new format is a class here and one line in `WRITERS` (and its name in
`options.FORMATS`, which the command line reads without PyArrow).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .answers import Column
from .card import write_card
from .features import parquet_metadata
from .options import ExportOptions
from .tables import clip_row, clips_columns, clips_schema, flat, sample_schema, table_row, window_schema
from .webdataset import FEATURES_FILE, Samples
from .writers import MB, ParquetShards, Staging

if TYPE_CHECKING:
    from .report import ExportReport


class Writer(Protocol):
    """What an export writes its rows through."""

    paths: ClassVar[tuple[str, ...]]

    def __init__(self, staging: Staging, options: ExportOptions, answers: Column) -> None: ...

    def add(self, record: dict[str, Any], windows: list[dict[str, Any]], number: int, folder: Path) -> None:
        """One published record and its window rows (their cut columns in); `number`: its line."""

    def close(self, report: ExportReport) -> list[str]:
        """Finish the files; their names under the staging folder."""


def _prefix() -> str:
    # Shards are named after this export: `datasets` caches a folder's tables by their file names, so new
    # names keep a re-export from loading as the old one.
    return f"train-{time.time_ns():x}"


class _Tables:
    """A clips table and a windows table in Parquet, each file declaring its `datasets` features."""

    def __init__(self, clips: ParquetShards, windows: ParquetShards) -> None:
        self.clips, self.windows = clips, windows

    def add(self, record: dict[str, Any], windows: list[dict[str, Any]], number: int, folder: Path) -> None:
        self.clips.add(clip_row(record), number)
        for window in windows:
            self.windows.add(table_row(window), number)


def _schemas(options: ExportOptions, answers: Column) -> dict[str, Any]:
    """The ParquetShards arguments of each table: its schema, transform and `huggingface` metadata."""
    windows = window_schema(answers, options.cut is not None)
    return {
        "clips": {"schema": clips_schema(options.keep_abs_paths), "transform": flat,
                  "metadata": parquet_metadata(clips_columns(options.keep_abs_paths))},
        "windows": {"schema": windows, "metadata": parquet_metadata(windows)},
    }  # fmt: skip


class HubFolder(_Tables):
    """hf: a Hugging Face dataset folder, sharded Parquet under data/ and a dataset card with two configs."""

    paths = ("README.md", "data/windows", "data/clips")

    def __init__(self, staging: Staging, options: ExportOptions, answers: Column) -> None:
        self.staging, self.options, self.answers = staging, options, answers
        data, prefix, shard_bytes = staging.path("data"), _prefix(), options.shard_mb * MB
        tables = {name: ParquetShards(data / name, prefix, shard_bytes=shard_bytes, **arguments)
                  for name, arguments in _schemas(options, answers).items()}  # fmt: skip
        super().__init__(tables["clips"], tables["windows"])

    def close(self, report: ExportReport) -> list[str]:
        tables = {"windows": self.windows.close(), "clips": self.clips.close()}
        relative = {name: [f"data/{name}/{path.name}" for path in files] for name, files in tables.items()}
        readme = self.staging.path("README.md")
        write_card(readme, report.survey, self.answers, self.options, report, relative)
        return ["data/windows", "data/clips", "README.md"]


class ParquetFiles(_Tables):
    """parquet: clips.parquet and windows.parquet, one file each."""

    paths = ("clips.parquet", "windows.parquet")

    def __init__(self, staging: Staging, options: ExportOptions, answers: Column) -> None:
        self.staging = staging
        tables = {name: ParquetShards(staging.root, name, **arguments)
                  for name, arguments in _schemas(options, answers).items()}  # fmt: skip
        super().__init__(tables["clips"], tables["windows"])

    def close(self, report: ExportReport) -> list[str]:
        for name, table in (("windows", self.windows), ("clips", self.clips)):
            (written,) = table.close()  # no shard size: one file each
            written.rename(self.staging.path(f"{name}.parquet"))
        return ["clips.parquet", "windows.parquet"]


class WebDatasetShards:
    """webdataset: tar shards under data/, a sample per window (see `webdataset`), and features.json."""

    paths = (FEATURES_FILE,)

    def __init__(self, staging: Staging, options: ExportOptions, answers: Column) -> None:
        self.staging = staging
        schema = sample_schema(answers, options.cut is not None)
        self.samples = Samples(staging.path("data"), _prefix(), options.shard_mb * MB, schema)

    def add(self, record: dict[str, Any], windows: list[dict[str, Any]], number: int, folder: Path) -> None:
        for window in windows:
            self.samples.add(window, record, folder)

    def close(self, report: ExportReport) -> list[str]:
        files = self.samples.close()
        self.samples.write_features(self.staging.path(FEATURES_FILE))
        return [f"data/{path.name}" for path in files] + [FEATURES_FILE]


WRITERS: dict[str, type[Writer]] = {"hf": HubFolder, "parquet": ParquetFiles, "webdataset": WebDatasetShards}
