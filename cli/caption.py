"""`smolvlm-video caption PATH...`: caption videos to JSONL; flags in, progress out, the run in the core."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from smolvlm_video.batch.captioning import CaptionJob, read_prompts
from smolvlm_video.batch.clips import DEFAULT_PROMPT
from smolvlm_video.batch.runs import Captioning, CaptionRun, plan_run
from smolvlm_video.model.schemas import JsonSchema

from .options import (
    ShardType,
    build_generation,
    build_model,
    build_ray,
    build_sampling,
    core_errors,
    engine_options,
    generation_options,
    json_schema_option,
    model_options,
    quiet_transformers,
    sampling_options,
)
from .progress import show_run


@click.command("caption")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default="captions.jsonl",
              show_default=True, help="JSONL file the records are appended to.")  # fmt: skip
@click.option(
    "--subtitles",
    type=click.Choice(["srt", "vtt"]),
    default=None,
    help="Also write one subtitle file per clip (a cue per window) next to the JSONL, in this format.",
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
    help='JSON object of named prompts, e.g. {"short": "...", "detailed": "..."}; each answered per clip. '
    'A prompt may carry its own schema: {"tags": {"prompt": "...", "schema": {...}}}.',
)
@json_schema_option
@click.option("--system", default=None, help="A system message before the prompt.")
@click.option(
    "--summarize", is_flag=True, help="Long clips: one whole-video caption from the window captions."
)
@sampling_options
@model_options
@generation_options
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True,
              help="Chats per generate call (a window and a prompt each); halved on OOM.")  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Decoding threads [default: 2]; with --engine ray, decoding tasks at once "
                   "[default: as many as the cluster's CPUs take].")  # fmt: skip
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
@engine_options
@core_errors(interrupted="Interrupted: the finished clips are saved; rerun the same command to go on.")
def caption_command(paths: tuple[str, ...], output: Path, **params: Any) -> None:
    """Caption the videos in PATHS (files or folders) to a JSONL file, one record a clip.

    Rerunning the same command resumes: clips already captioned are skipped.

    Exit status: 0 when every clip was captioned (or skipped, or none found); 1 when any clip failed
    (the records say why); 2 for a usage error (a bad option value, a model that cannot be loaded,
    an output that cannot be written, a full disk); 130 after Ctrl-C (finished clips are kept).
    """
    run = build_run(paths, output, params)
    plan = plan_run(run)
    console = Console(stderr=True, quiet=params["quiet"])
    if params["dry_run"]:
        pending = set(plan.todo)
        for path in plan.clips:
            click.echo(f"{'caption' if path in pending else 'skip (done)'}\t{path}")
        return
    if not plan.clips:
        console.print(f"No videos found in {', '.join(paths)}; nothing to do.")
        return
    if not plan.todo:
        console.print(f"Nothing to do: {len(plan.clips)} clips found, all already captioned in {output}.")
        return
    if params["quiet"] or params["json_progress"]:
        quiet_transformers()
    stats = show_run(Captioning(run, plan), console, params["json_progress"])
    if stats.failures:
        sys.exit(1)


def build_run(paths: tuple[str, ...], output: Path, params: dict[str, Any]) -> CaptionRun:
    """The CaptionRun the flags describe."""
    prompts, schemas = (
        read_prompts(params["prompt_file"]) if params["prompt_file"] else ({"caption": params["prompt"]}, {})
    )
    if params["json_schema"]:  # for every prompt whose entry in the prompt file brings no schema of its own
        default = JsonSchema.from_file(params["json_schema"])
        schemas = {name: schemas.get(name, default) for name in prompts}
    job = CaptionJob(
        model=build_model(params),
        prompts=prompts,
        sampling=build_sampling(params),
        generation=build_generation(params),
        system=params["system"],
        batch_size=params["batch_size"],
        summarize=params["summarize"],
        workers=params["workers"],
        schemas=schemas,
    )
    return CaptionRun(
        inputs=paths,
        output=output,
        job=job,
        recursive=params["recursive"],
        patterns=params["patterns"],
        from_list=params["from_list"],
        shard=params["shard"],
        overwrite=params["overwrite"],
        retry_errors=params["retry_errors"],
        subtitles=params["subtitles"],
        engine=params["engine"],
        ray=build_ray(params),
    )
