"""`smolvlm-video ask MEDIA "question"`: one answer about a video or an image, streamed as it is written."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from smolvlm_video.options import GenerationOptions, ModelOptions, SamplingOptions

from .options import core_errors, generation_options, json_schema_option, model_options, sampling_options


@click.command("ask")
@core_errors
@click.argument("media", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("question")
@click.option("--system", default=None, help="A system message before the question.")
@json_schema_option
@sampling_options
@model_options
@generation_options
def ask_command(
    media: Path,
    question: str,
    system: str | None,
    json_schema: Path | None,
    sampling: SamplingOptions,
    model: ModelOptions,
    generation: GenerationOptions,
) -> None:
    """Ask QUESTION about MEDIA (a video, or an image) and stream the answer to the terminal.

    With --json-schema the answer is JSON that follows the schema; exit status 1 if max new tokens cut it off.
    """
    from smolvlm_video.model.generate import stream
    from smolvlm_video.model.loading import load_fitted
    from smolvlm_video.model.prompts import chat
    from smolvlm_video.model.schemas import JsonSchema, Question, check_generation, parse_answer
    from smolvlm_video.video.media import load_media

    if model.compile == "auto":  # one answer does not pay back a compile
        model = replace(model, compile="off")
    schema = JsonSchema.from_file(json_schema) if json_schema else None
    if schema:
        check_generation(generation.min_new_tokens)
    loaded, sampling = load_fitted(model, sampling)
    asked = chat(Question(question, schema), load_media(media, sampling), system=system)
    answer = ""
    for piece in stream(loaded, asked, generation):
        click.echo(piece if answer else piece.lstrip(), nl=False)
        answer += piece
    click.echo()
    parse_answer(answer, asked.schema, generation.max_new_tokens)  # a TruncatedError says what to raise
