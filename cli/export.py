"""`smolvlm-video export RECORDS FOLDER`: a caption JSONL to Parquet, a Hugging Face dataset folder, or
WebDataset shards, with each window cut into a clip of its own on request."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from smolvlm_video.export.options import (
    CUT_MODES,
    DEFAULT_CODEC,
    DEFAULT_CRF,
    DEFAULT_CUT_WORKERS,
    DEFAULT_SHARD_MB,
    FORMATS,
    MIN_CLIP_SIDE,
    CutOptions,
    ExportOptions,
)

from .options import Pair, core_errors, option_group, sink_option

EXPORT_EXTRA = "pip install 'smolvlm-video[export]'"


class SourceRoot(Pair):
    """OLD=NEW: the folder a source was captioned under, and where it is now; both as absolute paths."""

    name, example = "OLD=NEW", "/mnt/old=/data/clips"

    def pair(self, left: str, right: str) -> tuple[str, str]:
        return os.path.abspath(left), os.path.abspath(right)


_EXPORT = [
    click.option(
        "--to",
        "format",
        type=click.Choice(FORMATS),
        default=FORMATS[0],
        show_default=True,
        help="hf: a Hugging Face dataset folder (Parquet under data/ and a dataset card). parquet: "
        "clips.parquet and windows.parquet. webdataset: tar shards, a sample per window (.json, .txt, and "
        ".mp4 with --clips).",
    ),
    click.option(
        "--clips", "cut_clips", is_flag=True, help="Cut each window into its own MP4 under FOLDER/cuts/."
    ),
    click.option(
        "--cut",
        "mode",
        type=click.Choice(CUT_MODES),
        default=CUT_MODES[0],
        show_default=True,
        help="exact: re-encode from the window's first frame. copy: copy packets from the keyframe at or "
        "before the start; fast, but the clip may start up to a keyframe interval early.",
    ),
    click.option(
        "--clip-codec", "codec", default=DEFAULT_CODEC, show_default=True, help="Video encoder of exact cuts."
    ),
    click.option(
        "--clip-crf",
        "crf",
        type=click.IntRange(0, 63),
        default=DEFAULT_CRF,
        show_default=True,
        help="The encoder's constant rate factor: lower is better and bigger.",
    ),
    click.option(
        "--clip-preset",
        "preset",
        default=None,
        help="The encoder's speed preset (libx264: ultrafast ... veryslow).",
    ),
    click.option(
        "--clip-side",
        "side",
        type=click.IntRange(min=MIN_CLIP_SIDE),
        help="Scale cut clips to this many pixels on their longest side [default: the source's].",
    ),
    click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=DEFAULT_CUT_WORKERS,
        show_default=True,
        help="Runs of windows cut at once (each encoder also uses threads of its own).",
    ),
    click.option(
        "--shard-mb",
        type=click.IntRange(min=1),
        default=DEFAULT_SHARD_MB,
        show_default=True,
        help="hf and webdataset: start a new shard after this many MB.",
    ),
    click.option(
        "--force",
        is_flag=True,
        help="Replace the paths the export writes (README.md, data/windows, ...) even where an export "
        "did not write them. Without it such a path stops the export (exit 2).",
    ),
    click.option(
        "--keep-stale-cuts", is_flag=True, help="Keep clip files in cuts/ that no row uses any more."
    ),
    click.option("--license", default=None, help="The dataset card's license: a Hub license id."),
    click.option(
        "--name", default=None, help="The Hub repo id (user/dataset) the card's snippets load and upload to."
    ),
    click.option(
        "--source-root",
        "source_roots",
        multiple=True,
        type=SourceRoot(),
        help="OLD=NEW: a source captioned under OLD now lies under NEW (repeatable).",
    ),
    click.option(
        "--relative-to",
        type=click.Path(file_okay=False),
        default=None,
        help="Write each source's path relative to this folder [default: the common folder of the sources].",
    ),
    click.option(
        "--keep-abs-paths", is_flag=True, help="Keep the sources' absolute paths (abs_path) in the tables."
    ),
    sink_option,
]


def _export_options(
    cut_clips: bool, mode: str, codec: str, crf: int, preset: str | None, side: int | None, **fields: Any
) -> ExportOptions:
    """The ExportOptions of the export flags: the cut flags make its CutOptions, with --clips."""
    cut = CutOptions(mode, codec, crf, preset, side) if cut_clips else None  # type: ignore[arg-type]
    return ExportOptions(cut=cut, **fields)


@click.command("export")
@core_errors
@click.argument("records", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@option_group("options", _EXPORT, _export_options)
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
def export_command(records: Path, folder: Path, options: ExportOptions, quiet: bool) -> None:
    """Export the caption records in RECORDS (a `caption` JSONL) to FOLDER.

    RECORDS may be read while a run still appends to it. Rerunning replaces the export whole; clips already
    cut are reused. An export replaces only what an export wrote (listed in FOLDER/.smolvlm-export.json):
    the folder's other files are never touched. Exit status: 0 when all went well; 1 when some window could
    not be cut (its row says why); 2 when RECORDS holds no record or a line that is not one, an option is
    wrong, or a path to write is not the export's own (nothing is written then).
    """
    try:
        from smolvlm_video.export.exporting import export
    except ImportError as error:
        raise click.UsageError(f"export needs PyArrow ({error}): {EXPORT_EXTRA}") from error
    console = Console(stderr=True, quiet=quiet)
    with Progress(TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=quiet) as progress:  # fmt: skip
        task = progress.add_task("exporting", total=None)
        report = export(
            records, folder, options, lambda done, total: progress.update(task, completed=done, total=total)
        )
    found = report.counts
    console.print(
        f"Exported {found.records} records ({found.ok} ok, {found.records - found.ok} failed) and "
        f"{found.windows} windows to {folder} ({options.format}): {len(report.files)} files."
    )
    if options.cut is not None:
        failed = ", ".join(f"{n} {kind}" for kind, n in report.cuts.items() if kind not in ("cut", "reused"))
        console.print(
            f"Clips: {report.cuts['cut']} cut, {report.cuts['reused']} reused, {report.cut_failures} failed"
            f"{f' ({failed}; the windows table says why)' if failed else ''}."
        )
    if report.stale_cuts:
        kept = "kept (--keep-stale-cuts)" if options.keep_stale_cuts else "removed"
        console.print(f"{report.stale_cuts} clip files no row uses any more: {kept}.")
    if report.removed:
        console.print(f"Removed the previous export's {', '.join(report.removed)}.")
    if report.cut_failures:
        sys.exit(1)
