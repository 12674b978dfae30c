"""`smolvlm-video serve`: an OpenAI-compatible chat-completions server for images and videos."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import click

from smolvlm_video.options import ModelOptions, SamplingOptions
from smolvlm_video.server.options import (
    DEFAULT_FETCH_SECONDS,
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_BODY_MB,
    DEFAULT_MAX_MEDIA_MB,
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_MAX_QUEUE,
    ServerOptions,
)
from smolvlm_video.speech import SpeechOptions

from .options import core_errors, model_options, sampling_options, speech_options

SERVE_EXTRA = "pip install 'smolvlm-video[serve]'"


@click.command("serve")
@core_errors
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; loopback by default.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--api-key", envvar="SMOLVLM_API_KEY", default=None,
              help="Clients must send it as a Bearer token [env: SMOLVLM_API_KEY].")  # fmt: skip
@click.option("--no-auth", is_flag=True, help="Allow binding to a non-loopback address without an API key.")
@click.option(
    "--allowed-media-path",
    "allowed",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A folder whose files requests may name by path or file:// URL (repeatable). None by default.",
)
@click.option(
    "--allow-url-fetch",
    is_flag=True,
    help="Fetch http(s) media URLs from public addresses (within --max-media-mb and --fetch-seconds). "
    "Off by default.",
)
@click.option(
    "--fetch-seconds",
    type=click.FloatRange(min=0.1),
    default=DEFAULT_FETCH_SECONDS,
    show_default=True,
    help="With --allow-url-fetch: how long a medium's whole download may take, redirects included.",
)
@click.option(
    "--allow-fetch-host",
    "fetch_hosts",
    multiple=True,
    help="With --allow-url-fetch: a host name, address or CIDR network that fetches may reach although "
    "it is not public, e.g. your own media server (repeatable).",
)
@click.option(
    "--fetch-proxy",
    default=None,
    help="With --allow-url-fetch: send every fetch through this proxy, which then decides what is reached "
    "(proxy variables of the environment are ignored).",
)
@click.option(
    "--max-new-tokens",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_NEW_TOKENS,
    show_default=True,
    help="The most tokens an answer may take; it caps a request's max_tokens.",
)
@click.option("--max-batch", type=click.IntRange(min=1), default=DEFAULT_MAX_BATCH, show_default=True,
              help="Requests answered together in one generate call.")  # fmt: skip
@click.option("--max-queue", type=click.IntRange(min=1), default=DEFAULT_MAX_QUEUE, show_default=True,
              help="Requests waiting for the model; one more is answered 429 with Retry-After.")  # fmt: skip
@click.option("--max-body-mb", type=click.IntRange(min=1), default=DEFAULT_MAX_BODY_MB, show_default=True)
@click.option("--max-media-mb", type=click.IntRange(min=1), default=DEFAULT_MAX_MEDIA_MB, show_default=True)
@sampling_options
@model_options
@speech_options
def serve_command(
    host: str,
    port: int,
    api_key: str | None,
    no_auth: bool,
    allowed: tuple[Path, ...],
    allow_url_fetch: bool,
    fetch_seconds: float,
    fetch_hosts: tuple[str, ...],
    fetch_proxy: str | None,
    max_new_tokens: int,
    max_batch: int,
    max_queue: int,
    max_body_mb: int,
    max_media_mb: int,
    sampling: SamplingOptions,
    model: ModelOptions,
    speech: SpeechOptions,
) -> None:
    """Serve the model over HTTP, OpenAI style: /v1/chat/completions, /v1/models and /health.

    Messages take text, image_url, video_url and input_video parts; media as data: URIs, or as paths under
    --allowed-media-path. Sampling flags set the videos' defaults; a request may send its own fps,
    max_frames, start, end and split, and "speech": "prompt" for its videos' transcripts before the question
    (the --speech-* flags pick the speech model; --speech prompt makes it every request's default).
    """
    if not _loopback(host) and not api_key and not no_auth:
        raise click.UsageError(f"Binding to {host} without an API key: set --api-key (or SMOLVLM_API_KEY), "
                               "or pass --no-auth to serve without one.")  # fmt: skip
    try:
        import uvicorn

        from smolvlm_video.server.app import create_app
    except ImportError as error:
        raise click.UsageError(f"serve needs FastAPI and uvicorn ({error}): {SERVE_EXTRA}") from error
    from smolvlm_video.model.generate import warm_up
    from smolvlm_video.model.loading import load_fitted

    loaded, sampling = load_fitted(model, sampling)
    warm_up(loaded)  # where the decoding step is compiled: now, not at the first request
    options = ServerOptions(
        api_key=api_key,
        allowed_media_paths=tuple(Path(os.path.realpath(folder)) for folder in allowed),
        max_body_mb=max_body_mb,
        max_media_mb=max_media_mb,
        max_new_tokens=max_new_tokens,
        sampling=sampling,
        model_names=(model.name,),
        fetch_seconds=fetch_seconds if allow_url_fetch else None,
        fetch_hosts=fetch_hosts,
        fetch_proxy=fetch_proxy,
        max_batch=max_batch,
        max_queue=max_queue,
        speech=speech,
    )
    uvicorn.run(create_app(loaded, options), host=host, port=port, log_level="info")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
