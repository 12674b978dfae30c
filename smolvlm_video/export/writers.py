"""Where an export's tables go: Parquet files in row groups, WebDataset tar shards, and the staging folder
that makes a rerun replace them whole.

Rows are buffered `ROW_GROUP_ROWS` at a time and written as one row group, so memory is one row group
whatever the number of records. Both writers start a new file (a shard) once the current one passes
`shard_bytes`; each shard is named when the table is complete: `<prefix>-00000-of-00003.parquet`, as the
Hugging Face Hub names them.

Everything is written inside `Staging`, a hidden folder in the output folder, and moved into place only
when the whole export has succeeded: a file with one rename over the old one, a folder by moving the old
one aside first. An export that fails or is interrupted leaves the previous output as it was.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP_ROWS = 10_000  # rows buffered before they are written as one Parquet row group
MB = 1 << 20


class Staging:
    """A hidden folder in `folder` where an export is written, then moved into place as a whole."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.root = folder / f".export-{os.getpid()}"
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir()

    def path(self, name: str) -> Path:
        """Where the output `name` (a file or a folder, relative to `folder`) is written first."""
        return self.root / name

    def commit(self, names: list[str]) -> None:
        """Move each staged output over its old version; if any move fails, put every old one back."""
        backup = self.root / ".old"
        backup.mkdir()
        moved: list[str] = []
        try:
            for name in names:
                target = self.folder / name
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists():
                    target.rename(backup / name.replace("/", "-"))
                moved.append(name)
                (self.root / name).rename(target)
        except BaseException:
            for name in reversed(moved):
                target, old = self.folder / name, backup / name.replace("/", "-")
                if (target.is_dir() and not target.is_symlink()) and old.exists():
                    shutil.rmtree(target)
                if old.exists():
                    os.replace(old, target)
            raise
        finally:
            self.abort()

    def abort(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class RowError(ValueError):
    """A row that does not fit its table's types; the message names the line of the records it came from."""


class ParquetShards:
    """One table written to Parquet in row groups, over as many files as `shard_bytes` asks.

    Rows are dicts that PyArrow converts to `schema`; `transform` (if given) turns each row group's table
    into the one written, with `metadata` as its schema's metadata. A row that does not fit the schema
    raises ValueError naming the line it came from.
    """

    def __init__(
        self,
        folder: Path,
        prefix: str,
        schema: pa.Schema,
        shard_bytes: int | None = None,
        transform: Callable[[pa.Table], pa.Table] | None = None,
        metadata: dict[bytes, bytes] | None = None,
    ) -> None:
        self.folder, self.prefix, self.schema = folder, prefix, schema
        self.metadata = metadata  # the schema metadata of every file, such as the `datasets` features
        self.shard_bytes = shard_bytes
        self.transform = transform or (lambda table: table)
        self.rows: list[dict[str, Any]] = []
        self.lines: list[int] = []  # the line of the records file each buffered row came from
        self.files: list[Path] = []
        self.count = 0  # rows written
        self._writer: pq.ParquetWriter | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, row: dict[str, Any], line: int = 0) -> None:
        self.rows.append(row)
        self.lines.append(line)
        if len(self.rows) >= ROW_GROUP_ROWS:
            self._write_group()

    def _write_group(self) -> None:
        table = self.transform(self._table())
        if self.metadata is not None:
            table = table.replace_schema_metadata(self.metadata)
        if self._writer is None:
            self.files.append(self.folder / f"{self.prefix}-{len(self.files):05d}.parquet")
            self._writer = pq.ParquetWriter(self.files[-1], table.schema, compression="zstd")
        self._writer.write_table(table)
        self.count += len(self.rows)
        self.rows, self.lines = [], []
        if self.shard_bytes is not None and self.files[-1].stat().st_size >= self.shard_bytes:
            self._writer.close()
            self._writer = None

    def _table(self) -> pa.Table:
        try:
            return pa.Table.from_pylist(self.rows, schema=self.schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass
        for row, line in zip(self.rows, self.lines, strict=True):  # the slow way, only to name the line
            try:
                pa.Table.from_pylist([row], schema=self.schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as error:
                raise RowError(f"line {line}: {error}") from error
        raise AssertionError("a row group failed whose rows each convert")

    def close(self) -> list[Path]:
        """Write what is left, and name the files as numbered shards (one file: `-00000-of-00001`)."""
        if self.rows or not self.files:
            self._write_group()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return _numbered(self.files)


class TarShards:
    """WebDataset shards: each sample its files, named `<key>.<extension>`, in tar files of `shard_bytes`."""

    def __init__(self, folder: Path, prefix: str, shard_bytes: int) -> None:
        self.folder, self.prefix, self.shard_bytes = folder, prefix, shard_bytes
        self.files: list[Path] = []
        self.count = 0  # samples written
        self._tar: tarfile.TarFile | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, key: str, members: Mapping[str, bytes | Path]) -> None:
        """One sample: extension -> its bytes, or the file that holds them."""
        if self._tar is None:
            self.files.append(self.folder / f"{self.prefix}-{len(self.files):05d}.tar")
            self._tar = tarfile.open(self.files[-1], "w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115
        for extension, content in members.items():
            info = tarfile.TarInfo(f"{key}.{extension}")
            info.mode, info.mtime = 0o644, 0  # the same bytes from the same samples, rerun after rerun
            if isinstance(content, Path):
                info.size = content.stat().st_size
                with open(content, "rb") as file:
                    self._tar.addfile(info, file)
            else:
                info.size = len(content)
                self._tar.addfile(info, io.BytesIO(content))
        self.count += 1
        if self.files[-1].stat().st_size >= self.shard_bytes:
            self._tar.close()
            self._tar = None

    def close(self) -> list[Path]:
        """Close the last shard, and name the shards as numbered ones (one shard: `-00000-of-00001`)."""
        if self._tar is not None:
            self._tar.close()
            self._tar = None
        return _numbered(self.files)


def _numbered(files: list[Path]) -> list[Path]:
    """Rename shards written as `<prefix>-00001.<ext>` to `<prefix>-00001-of-00003.<ext>`; the new paths."""
    named = [path.with_name(f"{path.stem}-of-{len(files):05d}{path.suffix}") for path in files]
    for old, new in zip(files, named, strict=True):
        old.rename(new)
    return named
