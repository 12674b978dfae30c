"""`smolvlm-video caption PATH...`: caption videos to JSONL; flags in, progress out, the run in the core."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from smolvlm_video.batch.captioning import CaptionJob
from smolvlm_video.batch.engines import engine_options as build_engine_options
from smolvlm_video.batch.runs import Captioning, CaptionRun, Shard, SubtitleKind, plan_run
from smolvlm_video.batch.subtitles import SUBTITLE_SOURCES, SubtitleSource
from smolvlm_video.model.schemas import Question
from smolvlm_video.options import GenerationOptions, ModelOptions, SamplingOptions
from smolvlm_video.speech import SpeechOptions

from .options import (
    ShardType,
    core_errors,
    engine_options,
    generation_options,
    model_options,
    question_options,
    quiet_transformers,
    sampling_options,
    sink_option,
    speech_options,
)
from .progress import show_run


@click.command("caption")
@core_errors(interrupted="Interrupted: the finished clips are saved; rerun the same command to go on.")
@click.argument("inputs", nargs=-1, required=True, metavar="PATHS...", type=click.Path(path_type=str))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default="captions.jsonl",
              show_default=True, help="JSONL file the records are appended to.")  # fmt: skip
@click.option(
    "--subtitles",
    type=click.Choice(["srt", "vtt"]),
    default=None,
    help="Also write one subtitle file per clip (a cue per window) next to the JSONL, in this format.",
)
@click.option(
    "--subtitles-from",
    type=click.Choice(SUBTITLE_SOURCES),
    default="captions",
    show_default=True,
    help="The subtitles' cues: the captions, what was said (needs --speech), or both in time order.",
)
@click.option(
    "--recursive/--no-recursive", default=True, show_default=True, help="Search folders recursively."
)
@click.option("--glob", "patterns", multiple=True, help="Only files matching this pattern (repeatable).")
@click.option("--from-list", is_flag=True, help="PATHS are text files listing one video path a line.")
@question_options
@click.option("--system", default=None, help="A system message before the prompt.")
@click.option(
    "--summarize", is_flag=True, help="Long clips: one whole-video caption from the window captions."
)
@sampling_options
@model_options
@generation_options
@speech_options
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
@sink_option
def caption_command(
    inputs: tuple[str, ...],
    output: Path,
    subtitles: SubtitleKind | None,
    subtitles_from: SubtitleSource,
    recursive: bool,
    patterns: tuple[str, ...],
    from_list: bool,
    questions: dict[str, Question],
    system: str | None,
    summarize: bool,
    sampling: SamplingOptions,
    model: ModelOptions,
    generation: GenerationOptions,
    speech: SpeechOptions,
    batch_size: int,
    workers: int | None,
    shard: Shard | None,
    overwrite: bool,
    retry_errors: bool,
    dry_run: bool,
    quiet: bool,
    json_progress: bool,
    engine: str,
    engine_options: tuple[tuple[str, str], ...],
    sink: str,
) -> None:
    """Caption the videos in PATHS (files or folders) to a JSONL file, one record a clip.

    Rerunning the same command resumes: clips already captioned are skipped.

    Exit status: 0 when every clip was captioned (or skipped, or none found); 1 when any clip failed
    (the records say why); 2 for a usage error (a bad option value, a model that cannot be loaded,
    an output that cannot be written, a full disk); 130 after Ctrl-C (finished clips are kept).
    """
    job = CaptionJob(
        model=model,
        questions=questions,
        sampling=sampling,
        generation=generation,
        system=system,
        batch_size=batch_size,
        summarize=summarize,
        workers=workers,
        speech=speech,
    )
    run = CaptionRun(
        inputs=inputs,
        output=output,
        job=job,
        recursive=recursive,
        patterns=patterns,
        from_list=from_list,
        shard=shard,
        overwrite=overwrite,
        retry_errors=retry_errors,
        subtitles=subtitles,
        subtitles_from=subtitles_from,
        engine=engine,
        engine_options=build_engine_options(engine, dict(engine_options)),
        sink=sink,
    )
    plan = plan_run(run)
    console = Console(stderr=True, quiet=quiet)
    if dry_run:
        pending = set(plan.todo)
        for path in plan.clips:
            click.echo(f"{'caption' if path in pending else 'skip (done)'}\t{path}")
        return
    if not plan.clips:
        console.print(f"No videos found in {', '.join(inputs)}; nothing to do.")
        return
    if not plan.todo:
        console.print(f"Nothing to do: {len(plan.clips)} clips found, all already captioned in {output}.")
        return
    if quiet or json_progress:
        quiet_transformers()
    stats = show_run(Captioning(run, plan), console, json_progress)
    if stats.failures:
        sys.exit(1)
