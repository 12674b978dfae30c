"""`smolvlm-video ask MEDIA "question"`: one answer about a video or an image, streamed as it is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .options import (
    build_generation,
    build_model,
    build_sampling,
    core_errors,
    generation_options,
    json_schema_option,
    model_options,
    sampling_options,
)


@click.command("ask")
@click.argument("media", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("question")
@click.option("--system", default=None, help="A system message before the question.")
@json_schema_option
@sampling_options
@model_options
@generation_options
@core_errors
def ask_command(media: Path, question: str, **params: Any) -> None:
    """Ask QUESTION about MEDIA (a video, or an image) and stream the answer to the terminal.

    With --json-schema the answer is JSON that follows the schema; exit status 1 if max new tokens cut it off.
    """
    from smolvlm_video.model.generate import stream
    from smolvlm_video.model.loading import load_fitted
    from smolvlm_video.model.prompts import chat
    from smolvlm_video.model.schemas import JsonSchema, Question, check_generation, parse_answer
    from smolvlm_video.video.media import load_media

    generation = build_generation(params)
    schema = JsonSchema.from_file(params["json_schema"]) if params["json_schema"] else None
    if schema:
        check_generation(generation.min_new_tokens)
    model, sampling = load_fitted(build_model(params), build_sampling(params))
    item = load_media(media, sampling)
    answer = ""
    for piece in stream(model, chat(Question(question, schema), item, system=params["system"]), generation):
        click.echo(piece if answer else piece.lstrip(), nl=False)
        answer += piece
    click.echo()
    if schema:
        parse_answer(answer.strip(), generation.max_new_tokens)  # a TruncatedError says what to raise
