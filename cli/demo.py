"""`smolvlm-video demo`: serve the Gradio app (image and video chat) from this machine."""

from __future__ import annotations

import os
from typing import Any

import click

from smolvlm_video.model.registry import DEVICES, DTYPE_NAMES


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: all).")
@click.option("--port", type=int, default=7860, show_default=True)
@click.option("--share", is_flag=True, help="Also serve through a temporary public gradio.live link.")
@click.option("--model", default=None, help="Model to start with [default: $SMOLVLM_MODEL or 256M].")
@click.option("--device", type=click.Choice(DEVICES), default=None, help="[default: $SMOLVLM_DEVICE or auto]")
@click.option(
    "--dtype", type=click.Choice(DTYPE_NAMES), default=None, help="[default: $SMOLVLM_DTYPE or auto]"
)
def demo_command(host: str, port: int, share: bool, **model_params: Any) -> None:
    """Serve the chat app on http://HOST:PORT. Other settings come from the SMOLVLM_* variables."""
    for name, value in model_params.items():
        if value is not None:
            os.environ[f"SMOLVLM_{name.upper()}"] = value
    try:
        from smolvlm_video.demo import build_demo, launch_kwargs
    except ImportError as error:
        raise click.ClickException(
            f"The demo needs gradio ({error}); install it with: pip install 'smolvlm-video[demo]'"
        ) from error
    build_demo().launch(**launch_kwargs(server_name=host, server_port=port, share=share))
