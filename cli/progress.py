"""Showing a captioning run: a progress bar or JSON lines while it goes, a summary when it ends."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from smolvlm_video.batch.runs import Captioning, RunStats

COLUMNS = (
    TextColumn("{task.description}"),
    BarColumn(),
    MofNCompleteColumn(),
    TimeElapsedColumn(),
    TimeRemainingColumn(),
    TextColumn("{task.fields[rate]:.1f} clips/min, {task.fields[failed]} errors"),
)


def show_run(captioning: Captioning, console: Console, json_progress: bool) -> RunStats:
    """Run to the end with a progress bar (or a JSON line per clip on stderr), then print its summary."""
    stats = captioning.stats
    with Progress(*COLUMNS, console=console, disable=console.quiet or json_progress) as progress:
        task = progress.add_task("captioning", total=stats.total, failed=0, rate=0.0)
        for record in captioning:
            progress.update(task, advance=1, failed=stats.failures, rate=stats.clips_per_minute)
            if json_progress:
                line = {"done": stats.done, "total": stats.total, "failed": stats.failures,
                        "clips_per_minute": round(stats.clips_per_minute, 2), "path": record.path,
                        "status": record.status}  # fmt: skip
                click.echo(json.dumps(line, ensure_ascii=False), err=True)
    summary = {**stats.to_dict(), "records": str(captioning.run.output)}
    if json_progress:
        click.echo(json.dumps({"summary": summary}, ensure_ascii=False), err=True)
    else:
        console.print(_table(stats, captioning.run.job.batch_size, summary["records"]))
    return stats


def _table(stats: RunStats, asked_batch_size: int, records: str) -> Table:
    table = Table(title="smolvlm-video caption", show_header=False)
    table.add_row("captioned", str(stats.captioned))
    table.add_row("skipped (already done)", str(stats.skipped))
    table.add_row("failed", ", ".join(f"{n} {kind}" for kind, n in stats.failed.most_common()) or "0")
    table.add_row("time", f"{stats.seconds:.1f} s")
    table.add_row("throughput", f"{stats.clips_per_minute:.1f} clips/min")
    lowered = (
        f" (lowered from {asked_batch_size}: out of memory)" if stats.batch_size < asked_batch_size else ""
    )
    table.add_row("batch size", f"{stats.batch_size}{lowered}")
    table.add_row("records", records)
    return table
