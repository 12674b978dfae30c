"""`smolvlm-video caption PATH...`: caption videos to JSONL, resumable and safe on bad files."""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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

from smolvlm_video.clips import DEFAULT_PROMPT, find_clips
from smolvlm_video.records import clip_id, finished_ids

from .options import (
    build_generation,
    build_sampling,
    core_errors,
    generation_options,
    load_model_from,
    model_options,
    sampling_options,
)


class ShardType(click.ParamType):
    """I/N: this machine's share, 0 <= I < N."""

    name = "I/N"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        try:
            index, count = (int(part) for part in str(value).split("/"))
        except ValueError:
            self.fail(f"{value!r} is not of the form I/N, e.g. 0/4", param, ctx)
        if not 0 <= index < count:
            self.fail(f"{value!r}: I must be between 0 and N-1", param, ctx)
        return index, count


def in_shard(path: str, shard: tuple[int, int] | None) -> bool:
    """Whether a clip belongs to shard I of N, decided by a hash of its absolute path (stable everywhere)."""
    if shard is None:
        return True
    digest = hashlib.sha256(os.path.abspath(path).encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % shard[1] == shard[0]


def _check_output(output: Path) -> None:
    """Fail before any work if the output file cannot be appended to."""
    folder = output.parent
    if not folder.is_dir():
        raise click.UsageError(f"The output folder {folder} does not exist; create it first.")
    try:
        with open(output, "a", encoding="utf-8"):
            pass
    except OSError as error:
        raise click.UsageError(f"Cannot write to {output}: {error.strerror or error}.") from error


@click.command("caption")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default="captions.jsonl",
              show_default=True, help="JSONL file the records are appended to.")  # fmt: skip
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["jsonl", "srt", "vtt"]),
    default="jsonl",
    show_default=True,
    help="srt/vtt: also write one subtitle file per clip (a cue per window) next to the JSONL.",
)
@click.option(
    "--recursive/--no-recursive", default=True, show_default=True, help="Search folders recursively."
)
@click.option("--glob", "patterns", multiple=True, help="Only files matching this pattern (repeatable).")
@click.option("--from-list", is_flag=True, help="PATHS are text files listing one video path a line.")
@click.option("--prompt", default=DEFAULT_PROMPT, show_default=True, help="What to ask about each clip.")
@click.option(
    "--prompt-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON object of named prompts, e.g. {"short": "...", "detailed": "..."}; each answered per clip.',
)
@click.option("--system", default=None, help="A system message before the prompt.")
@click.option(
    "--summarize", is_flag=True, help="Long clips: one whole-video caption from the window captions."
)
@sampling_options
@model_options
@generation_options
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="Decoding threads.")
@click.option("--shard", type=ShardType(), default=None, help="Take shard I of N of the clips (0-based).")
@click.option("--overwrite", is_flag=True, help="Start the output file afresh instead of resuming.")
@click.option("--retry-errors/--no-retry-errors", default=True, show_default=True)
@click.option("--dry-run", is_flag=True, help="List what would be captioned and what skipped; write nothing.")
@click.option("--quiet", is_flag=True, help="No progress bar or summary.")
@click.option(
    "--json-progress",
    is_flag=True,
    help="One JSON line per clip on stderr, then a JSON summary line, for programs.",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: this machine. ray: a Ray cluster (pip install 'smolvlm-video[ray]').",
)
@click.option(
    "--ray-address", default=None, help="Ray cluster to join [default: $RAY_ADDRESS, else a local Ray]."
)
@click.option("--concurrency", type=click.IntRange(min=1), default=1, show_default=True,
              help="Ray engine: model copies (actors) generating at once.")  # fmt: skip
@click.option("--num-gpus-per-worker", type=click.FloatRange(min=0), default=None,
              help="Ray engine: GPUs per actor [default: 1 where the cluster has GPUs, else 0].")  # fmt: skip
@core_errors
def caption_command(paths: tuple[str, ...], output: Path, **params: Any) -> None:
    """Caption the videos in PATHS (files or folders) to a JSONL file, one record a clip.

    Rerunning the same command resumes: clips already captioned are skipped. The exit status is 1
    when any clip failed; the records say why.
    """
    sampling = build_sampling(params)
    _prompts(params)  # a bad prompt file fails before any work
    clips = _clips(paths, params)
    if not params["dry_run"]:
        _check_output(output)
    if params["overwrite"] and output.exists() and not params["dry_run"]:
        output.unlink()
    done = finished_ids(output, params["retry_errors"]) if output.exists() else set()
    todo = [path for path in clips if _id_or_none(path) not in done]
    pending = set(todo)
    console = Console(stderr=True, quiet=params["quiet"])
    if params["dry_run"]:
        for path in clips:
            click.echo(f"{'caption' if path in pending else 'skip (done)'}\t{path}")
        return
    if not clips:
        console.print(f"No videos found in {', '.join(paths)}; nothing to do.")
        return
    if not todo:
        console.print(f"Nothing to do: {len(clips)} clips found, all already captioned in {output}.")
        return
    generation = build_generation(params)
    failed = _run(todo, output, sampling, generation, params, console, skipped=len(clips) - len(todo))
    if failed:
        sys.exit(1)


def _write_subtitles(record: Any, folder: Path, kind: str) -> Path:
    """<clip name>.<id>.<srt|vtt> beside the JSONL: the id keeps same-named clips apart."""
    from smolvlm_video.subtitles import WRITERS

    path = folder / f"{Path(record.path).stem}.{record.id[:8]}.{kind}"
    path.write_text(WRITERS[kind](record.segments), encoding="utf-8")
    return path


def _prompts(params: dict[str, Any]) -> dict[str, str]:
    """Named prompts from --prompt-file, or {"caption": --prompt}."""
    if not params["prompt_file"]:
        return {"caption": params["prompt"]}
    try:
        prompts = json.loads(params["prompt_file"].read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise click.BadParameter(f"not valid JSON: {error}", param_hint="--prompt-file") from error
    if not (
        isinstance(prompts, dict) and prompts and all(isinstance(v, str) and v for v in prompts.values())
    ):
        raise click.BadParameter("must be a JSON object of name -> prompt text", param_hint="--prompt-file")
    return prompts


def _id_or_none(path: str) -> str | None:
    try:
        return clip_id(path)
    except OSError:
        return None


URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]+://")  # s3://, gs://, https://: not a local path


def _clips(paths: tuple[str, ...], params: dict[str, Any]) -> list[str]:
    inputs: list[str] = list(paths)
    if params["from_list"]:
        inputs = [
            line.strip() for name in paths for line in Path(name).read_text().splitlines() if line.strip()
        ]
    for item in inputs:
        if URI.match(item):
            raise click.BadParameter(
                f"{item}: URIs are not read directly. Mount the bucket (s3fs, gcsfuse, a shared filesystem) "
                "at the same path on every machine, or copy the clips to a local folder.",
                param_hint="PATHS",
            )
    clips = find_clips(inputs, recursive=params["recursive"], patterns=params["patterns"])
    return [path for path in clips if in_shard(path, params["shard"])]


def _run(todo, output, sampling, generation, params, console, skipped: int = 0) -> int:
    from smolvlm_video.records import JsonlWriter

    records = _records(todo, sampling, generation, params)
    errors: Counter[str] = Counter()
    started = time.monotonic()
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[rate]:.1f} clips/min, {task.fields[errors]} errors"),
    ]
    quiet_bar = console.quiet or params["json_progress"]
    with JsonlWriter(output) as writer, Progress(*columns, console=console, disable=quiet_bar) as progress:
        task = progress.add_task("captioning", total=len(todo), errors=0, rate=0.0)
        try:
            for count, record in enumerate(records, start=1):
                writer.write(record)
                if params["output_format"] != "jsonl" and record.status == "ok":
                    _write_subtitles(record, output.parent, params["output_format"])
                if record.status == "error":
                    errors[record.error["type"]] += 1
                rate = 60 * count / max(time.monotonic() - started, 1e-9)
                progress.update(task, advance=1, errors=sum(errors.values()), rate=rate)
                if params["json_progress"]:
                    _progress_line(record, count, len(todo), sum(errors.values()), rate)
        except KeyboardInterrupt:
            console.print("Interrupted: the finished clips are saved; rerun the same command to go on.")
            raise SystemExit(130) from None
    seconds = time.monotonic() - started
    if params["json_progress"]:
        _summary_line(len(todo), skipped, errors, seconds, output)
    else:
        _summary(console, len(todo), skipped, errors, seconds, output)
    return sum(errors.values())


def _records(todo: list[str], sampling: Any, generation: Any, params: dict[str, Any]) -> Iterator[Any]:
    """The chosen engine's records: the local pipeline, or the same steps on Ray."""
    fields = {
        "prompts": _prompts(params),
        "generation": generation,
        "system": params["system"],
        "batch_size": params["batch_size"],
        "summarize": params["summarize"],
    }
    if params["engine"] == "ray":
        from smolvlm_video.model import load_frame_side
        from smolvlm_video.ray_engine import ModelSpec, RayOptions, caption_clips_ray

        spec = ModelSpec(
            params.pop("model"), params.pop("revision"), params.pop("device"), params.pop("dtype")
        )
        fields["sampling"] = sampling.for_frame_side(load_frame_side(spec.name, spec.revision))
        ray = RayOptions(params["ray_address"], params["concurrency"], params["num_gpus_per_worker"])
        return caption_clips_ray(spec, fields, todo, ray)
    from smolvlm_video.captioning import CaptionJob, caption_clips

    model = load_model_from(params, quiet=params["quiet"] or params["json_progress"])
    job = CaptionJob(
        model=model, sampling=sampling.for_frame_side(model.frame_side), workers=params["workers"], **fields
    )
    return caption_clips(job, todo)


def _progress_line(record: Any, done: int, total: int, failed: int, rate: float) -> None:
    line = {"done": done, "total": total, "failed": failed, "clips_per_minute": round(rate, 2),
            "path": record.path, "status": record.status}  # fmt: skip
    click.echo(json.dumps(line, ensure_ascii=False), err=True)


def _summary_line(total: int, skipped: int, errors: Counter[str], seconds: float, output: Path) -> None:
    summary = {
        "captioned": total - sum(errors.values()),
        "skipped": skipped,
        "failed": dict(errors),
        "seconds": round(seconds, 3),
        "clips_per_minute": round(60 * total / max(seconds, 1e-9), 2),
        "records": str(output),
    }
    click.echo(json.dumps({"summary": summary}, ensure_ascii=False), err=True)


def _summary(
    console: Console, total: int, skipped: int, errors: Counter[str], seconds: float, output: Path
) -> None:
    failed = sum(errors.values())
    table = Table(title="smolvlm-video caption", show_header=False)
    table.add_row("captioned", str(total - failed))
    table.add_row("skipped (already done)", str(skipped))
    table.add_row("failed", ", ".join(f"{n} {kind}" for kind, n in errors.most_common()) or "0")
    table.add_row("time", f"{seconds:.1f} s")
    table.add_row("throughput", f"{60 * total / max(seconds, 1e-9):.1f} clips/min")
    table.add_row("records", str(output))
    console.print(table)
