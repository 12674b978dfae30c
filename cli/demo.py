"""`smolvlm-video demo`: serve the Gradio app (image and video chat) from this machine."""

from __future__ import annotations

import logging
import os

import click

from smolvlm_video.options import ATTENTIONS, DEVICES, DTYPE_NAMES, VISION_MODES


@click.command("demo")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: all).")
@click.option("--port", type=int, default=7860, show_default=True)
@click.option("--share", is_flag=True, help="Also serve through a temporary public gradio.live link.")
@click.option("--model", default=None, help="Model to start with [default: $SMOLVLM_MODEL or 256M].")
@click.option("--device", type=click.Choice(DEVICES), default=None, help="[default: $SMOLVLM_DEVICE or auto]")
@click.option(
    "--dtype", type=click.Choice(DTYPE_NAMES), default=None, help="[default: $SMOLVLM_DTYPE or auto]"
)
@click.option(
    "--attn",
    "attention",
    type=click.Choice(ATTENTIONS),
    default=None,
    help="[default: $SMOLVLM_ATTENTION or auto]",
)
@click.option(
    "--vision", type=click.Choice(VISION_MODES), default=None, help="[default: $SMOLVLM_VISION or auto]"
)
@click.option("--mcp", is_flag=True, help="Also serve the API to MCP clients [default: $SMOLVLM_MCP or off].")
def demo_command(
    host: str,
    port: int,
    share: bool,
    model: str | None,
    device: str | None,
    dtype: str | None,
    attention: str | None,
    vision: str | None,
    mcp: bool,
) -> None:
    """Serve the chat app on http://HOST:PORT. Other settings come from the SMOLVLM_* variables."""
    try:
        from smolvlm_video.demo import DemoConfig, build_demo, launch_kwargs
    except ImportError as error:
        raise click.ClickException(
            f"The demo needs gradio ({error}); install it with: pip install 'smolvlm-video[demo]'"
        ) from error
    flags = {"MODEL": model, "DEVICE": device, "DTYPE": dtype, "ATTENTION": attention, "VISION": vision}
    given = {f"SMOLVLM_{name}": value for name, value in flags.items() if value is not None}
    if mcp:
        given["SMOLVLM_MCP"] = "1"
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the app says at start whether MCP is on
    config = DemoConfig.from_env({**os.environ, **given})  # the flags win over the variables
    build_demo(config).launch(**launch_kwargs(config, server_name=host, server_port=port, share=share))
