"""Export a `caption` JSONL to a training set: Parquet tables, a Hugging Face dataset folder, or WebDataset.

`export(records, folder, options)` reads the JSONL twice, streaming: once to check every line and learn the
tables' types (`reading.survey`), once to write. What it writes is staged and moved into place only when
complete (`writers.Staging`), so a rerun replaces the previous export whole, and a failed one leaves it as
it was. It replaces only what an export wrote (`ownership`): a folder's other files are never touched.
The JSONL stays the run's journal: export reads it at any time, a partial one too, and reads no further
than the first pass did.

With `ExportOptions.cut`, each window of an ok clip is also cut from its source into a clip file under
`cuts/` (`cutting`), by a pool of `workers` threads a bounded way ahead of the writer; a clip file made by
an earlier export with the same source, span and options is reused. A window that cannot be cut (its source
moved or changed, the encoder failed) says why in its row, and the export goes on.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import av

from ..batch.records import fingerprint, safe_clip_id
from ..errors import (
    CutError,
    OutputError,
    RecordsError,
    SmolVLMVideoError,
    SourceChangedError,
    VideoNotFoundError,
)
from ..video.probe import VideoInfo, probe
from .answers import answers_column
from .cutting import Damage, Span, cut_spans
from .formats import WRITERS
from .options import CutOptions, ExportOptions
from .ownership import (
    CUTS_FOLDER,
    Manifest,
    claim,
    remove_dead_staging,
    remove_paths,
    remove_stale_cuts,
)
from .reading import Survey, read_journal, source_path, survey
from .report import ExportReport
from .tables import published, window_rows
from .writers import RowError, Staging

logger = logging.getLogger(__name__)

PROGRESS_EVERY = 100  # records between two calls of `progress`


Progress = Callable[[int, int], None]  # called with the records written so far, and all there are


def export(
    records: str | os.PathLike[str],
    folder: str | os.PathLike[str],
    options: ExportOptions | None = None,
    progress: Progress | None = None,
) -> ExportReport:
    """Export the records file to `folder`; RecordsError (and nothing written) if a line is not a record,
    or if there is none; PathInTheWayError (and nothing written) if a path it would write is not its own."""
    options = options or ExportOptions()
    report = ExportReport(Path(folder), survey(records, options.sink))
    if report.survey.records == 0:
        raise RecordsError(f"{records} holds no caption record: there is nothing to export.")
    previous = claim(report.folder, _planned(options), options.force)
    try:
        remove_dead_staging(report.folder)
        staging = Staging(report.folder)
        try:
            outputs = _write(Path(records), staging, options, report, progress)
            staging.commit(outputs)
        except BaseException:
            staging.abort()
            raise
        _settle(report, options, previous, outputs)
    except OSError as error:  # a full disk, a folder that cannot be written
        raise OutputError(
            f"Cannot write the export to {report.folder}: {error.strerror or error}. Any export there "
            "before is as it was; make room (or write elsewhere) and run again."
        ) from error
    report.files = sorted(p for name in outputs for p in _files(report.folder / name))
    return report


def _planned(options: ExportOptions) -> list[str]:
    """The paths an export with these options replaces, known before it runs (shards get new names)."""
    return [*WRITERS[options.format].paths, *([CUTS_FOLDER] if options.cut is not None else [])]


def _settle(
    report: ExportReport, options: ExportOptions, previous: Manifest | None, outputs: list[str]
) -> None:
    """After the commit: the previous export's other paths and stale cuts removed, the manifest written."""
    keep_cuts = options.cut is not None or (
        options.keep_stale_cuts and previous and CUTS_FOLDER in previous.paths
    )
    owned = [*outputs, *([CUTS_FOLDER] if keep_cuts else [])]
    report.removed = sorted(set(previous.paths) - set(owned)) if previous else []
    if CUTS_FOLDER in report.removed:  # no clips this time: every clip file is stale
        report.stale_cuts = sum(1 for _ in (report.folder / CUTS_FOLDER).rglob("*.mp4"))
    remove_paths(report.folder, report.removed)
    if options.cut is not None and not options.keep_stale_cuts:
        report.stale_cuts = remove_stale_cuts(report.folder, report.used_cuts)
    Manifest(options.format, tuple(owned)).write(report.folder)


def _files(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]


def _write(
    records: Path, staging: Staging, options: ExportOptions, report: ExportReport, progress: Progress | None
) -> list[str]:
    """Write the tables (or shards) into the staging folder; the names to move into place."""
    found = report.survey
    answers = answers_column(found.answer_columns())
    writer = WRITERS[options.format](staging, options, answers)
    base = os.path.abspath(options.relative_to) if options.relative_to else found.sources_root or ""
    try:
        for written, (number, source_record, cuts) in enumerate(
            _with_cuts(records, found, report, options), start=1
        ):
            report.counts.add(source_record)
            record = published(source_record, base, options.keep_abs_paths)
            windows = [window | cut for window, cut in zip(window_rows(record, answers), cuts, strict=True)]
            report.used_cuts.update(window["cut_path"] for window in windows if window.get("cut_path"))
            writer.add(record, windows, number, report.folder)
            if progress is not None and (written % PROGRESS_EVERY == 0 or written == found.records):
                progress(written, found.records)
        return writer.close(report)
    except RowError as error:
        raise RecordsError(f"{records}, {error}.") from error


def _with_cuts(
    records: Path, found: Survey, report: ExportReport, options: ExportOptions
) -> Iterator[tuple[int, dict[str, Any], list[dict[str, Any]]]]:
    """(line, record, each window's cut columns) in order, as far as the survey read.

    The cuts are made by a pool of `workers` threads, a clip's windows split between them in runs of
    consecutive windows (each run decoded once), at most 2 x workers runs ahead of the writer.
    """
    lines = (
        (n, r)
        for n, r in read_journal(records, options.sink)
        if n <= found.last_line and n not in found.superseded
    )
    if options.cut is None:
        for number, record in lines:
            yield number, record, [{} for _ in record.get("windows") or []]
        return
    cut = options.cut
    pool = ThreadPoolExecutor(options.workers, thread_name_prefix="cut")
    stop = threading.Event()  # set when the writer stops early (an error, Ctrl-C): cuts under way end too
    ahead: deque[tuple[int, dict[str, Any], list[Future[list[dict[str, Any]]]]]] = deque()
    in_flight = 0
    try:
        for number, record in lines:
            runs = _runs(record, options.workers)
            ahead.append(
                (
                    number,
                    record,
                    [
                        pool.submit(cut_windows, record, run, report.folder, cut, stop, options.source_roots)
                        for run in runs
                    ],
                )
            )
            in_flight += len(runs)
            while in_flight > 2 * options.workers or (ahead and all(f.done() for f in ahead[0][2])):
                in_flight -= len(ahead[0][2])
                yield _counted(ahead.popleft(), report)
        while ahead:
            yield _counted(ahead.popleft(), report)
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)


def _runs(record: dict[str, Any], workers: int) -> list[range]:
    """An ok record's windows (their indexes) in up to `workers` runs of consecutive windows."""
    count = len(record["windows"]) if record.get("status") == "ok" else 0
    parts = min(workers, count)
    return [range(part * count // parts, (part + 1) * count // parts) for part in range(parts)]


def _counted(
    item: tuple[int, dict[str, Any], list[Future[list[dict[str, Any]]]]], report: ExportReport
) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
    number, record, futures = item
    cuts = [cut for future in futures for cut in future.result()]
    for cut in cuts:
        report.cuts[cut.pop("outcome")] += 1
    return number, record, cuts


def cut_windows(
    record: dict[str, Any],
    indexes: range,
    folder: Path,
    options: CutOptions,
    stop: threading.Event | None = None,
    roots: Sequence[tuple[str, str]] = (),
) -> list[dict[str, Any]]:
    """Cut the windows of an ok record at `indexes` into their clip files under `folder`; each window's
    cut columns, and its `outcome` ("cut", "reused", or the error's type). Never raises: a failure is in
    the columns. `roots`: OLD=NEW folders sources moved from and to since they were captioned."""
    spans: list[Span] = []
    damage = Damage()  # what cutting skipped: its note goes in the rows
    try:
        for index in indexes:
            start, end = record["windows"][index]["start"], record["windows"][index]["end"]
            spans.append(
                Span(start, end, folder / CUTS_FOLDER / record["id"] / options.file_name(start, end))
            )
        existing = [span.target.exists() for span in spans]
        if all(existing):
            errors: list[SmolVLMVideoError | None] = [None] * len(spans)
        else:
            errors = cut_spans(_source(record, roots), spans, options, stop, damage)
    except SmolVLMVideoError as error:
        existing, errors = [False] * len(indexes), [error] * len(indexes)
    except Exception as error:  # an item never stops the batch: it says why in its row
        logger.warning("cutting %s failed", record["path"], exc_info=True)
        failure = CutError(record["path"], f"{type(error).__name__}: {error}")
        existing, errors = [False] * len(indexes), [failure] * len(indexes)
    return [
        _cut_columns(
            spans[n] if n < len(spans) else None, errors[n], existing[n], folder, damage.audio_note()
        )
        for n in range(len(indexes))
    ]


def _source(record: dict[str, Any], roots: Sequence[tuple[str, str]] = ()) -> VideoInfo:
    """The record's video as it was captioned, probed: where it lies now (`roots`: OLD=NEW folders it moved
    from and to); an error if it is gone or its content has changed since.

    A record with `video.fingerprint` is checked by content, so a move or a bare `touch` is not a change;
    one made before fingerprints by its path, size and time, as its id was made.
    """
    captioned = source_path(record)
    path = moved(captioned, roots)
    if not os.path.exists(path):
        hint = "; if it moved, say where with --source-root OLD=NEW" if path == captioned else f" (as {path})"
        raise VideoNotFoundError(
            captioned, f"the video is no longer there (moved or deleted since it was captioned){hint}"
        )
    expected = (record.get("video") or {}).get("fingerprint")
    if expected is not None and fingerprint(path) != expected:
        raise SourceChangedError(path, "the video's content has changed since it was captioned")
    if expected is None and (path != captioned or safe_clip_id(path) != record["id"]):
        raise SourceChangedError(path, "the video has changed since it was captioned (its size or time)")
    return probe(path)


def moved(path: str, roots: Sequence[tuple[str, str]]) -> str:
    """`path` under the first NEW folder whose OLD folder holds it; `path` itself where none does."""
    for old, new in roots:
        old_folder = Path(old)
        if Path(path).is_relative_to(old_folder):
            return os.fspath(Path(new) / Path(path).relative_to(old_folder))
    return path


def _cut_columns(
    span: Span | None, error: SmolVLMVideoError | None, existed: bool, folder: Path, audio_note: str | None
) -> dict[str, Any]:
    if error is not None or span is None:
        assert error is not None
        return {
            "cut_path": None,
            "cut_error_type": error.code,
            "cut_error_message": str(error),
            "outcome": error.code,
        }
    return {
        "cut_path": span.target.relative_to(folder).as_posix(),
        "cut_error_type": None,
        "cut_error_message": None,
        **clip_facts(span.target),
        "cut_audio": None if existed else audio_note,  # a clip reused from an earlier export: not known
        "outcome": "reused" if existed else "cut",
    }


def clip_facts(path: Path) -> dict[str, Any]:
    """A cut clip's own facts, from its header: frames, frame rate, bytes, and whether it has audio."""
    with av.open(os.fspath(path), metadata_errors="ignore") as container:
        video = container.streams.video[0]
        rate = video.average_rate or video.guessed_rate
        return {
            "cut_frames": video.frames,
            "cut_fps": round(float(rate), 3) if rate else None,
            "cut_bytes": path.stat().st_size,
            "cut_has_audio": bool(container.streams.audio),
        }
