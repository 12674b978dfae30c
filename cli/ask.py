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
    model_options,
    sampling_options,
)


@click.command("ask")
@click.argument("media", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("question")
@click.option("--system", default=None, help="A system message before the question.")
@sampling_options
@model_options
@generation_options
@core_errors
def ask_command(media: Path, question: str, **params: Any) -> None:
    """Ask QUESTION about MEDIA (a video, or an image) and stream the answer to the terminal."""
    from smolvlm_video.generate import stream
    from smolvlm_video.media import load_media
    from smolvlm_video.prompts import chat

    sampling = build_sampling(params)
    generation = build_generation(params)
    model = build_model(params).load()
    item = load_media(media, sampling.for_frame_side(model.frame_side))
    first = True
    for piece in stream(model, chat(question, item, system=params["system"]), generation):
        click.echo(piece.lstrip() if first else piece, nl=False)
        first = False
    click.echo()
