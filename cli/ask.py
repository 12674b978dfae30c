"""`smolvlm-video ask MEDIA "question"`: one answer about a video or an image, streamed as it is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from smolvlm_video.model import DEFAULT_MODEL, DEVICES, DTYPES
from smolvlm_video.options import GenerationOptions

from .options import build_sampling, core_errors, sampling_options

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")


@click.command("ask")
@click.argument("media", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("question")
@click.option(
    "--model", default=DEFAULT_MODEL, show_default=True, help="Registry name, Hub id or local folder."
)
@click.option("--revision", default=None, help="Hub revision (branch, tag or commit) to pin.")
@click.option("--system", default=None, help="A system message before the question.")
@sampling_options
@click.option("--max-new-tokens", type=int, default=256, show_default=True)
@click.option("--temperature", type=float, default=0.0, show_default=True, help="0 means greedy decoding.")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--dtype", type=click.Choice(list(DTYPES)), default="auto", show_default=True)
@core_errors
def ask_command(media: Path, question: str, **params: Any) -> None:
    """Ask QUESTION about MEDIA (a video, or an image) and stream the answer to the terminal."""
    from smolvlm_video.generate import stream
    from smolvlm_video.model import load_model
    from smolvlm_video.prompts import chat
    from smolvlm_video.video import sample_video

    sampling = build_sampling(params)
    generation = GenerationOptions.from_temperature(
        params["temperature"], max_new_tokens=params["max_new_tokens"]
    )
    model = load_model(params["model"], params["revision"], params["device"], params["dtype"])
    if media.suffix.lower() in IMAGE_EXTENSIONS:
        from PIL import Image

        item: Any = Image.open(media)
    else:
        item = sample_video(media, sampling.for_frame_side(model.frame_side))
    first = True
    for piece in stream(model, chat(question, item, system=params["system"]), generation):
        click.echo(piece.lstrip() if first else piece, nl=False)
        first = False
    click.echo()
