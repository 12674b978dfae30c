"""`smolvlm-video`: the Click command. A thin shell over the core."""

from __future__ import annotations

import click

from smolvlm_video import __version__

from .ask import ask_command
from .caption import caption_command
from .demo import demo_command
from .export import export_command
from .info import info_command
from .serve import serve_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="smolvlm-video")
def cli() -> None:
    """Watch videos with the small SmolVLM2 vision-language models."""


cli.add_command(info_command)
cli.add_command(caption_command)
cli.add_command(ask_command)
cli.add_command(demo_command)
cli.add_command(export_command)
cli.add_command(serve_command)


def main() -> None:
    """Entry point of the `smolvlm-video` script."""
    cli(prog_name="smolvlm-video")
