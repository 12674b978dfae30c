"""Click options shared by the commands, and the one place that turns them into core option objects."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from smolvlm_video.errors import SmolVLMVideoError
from smolvlm_video.options import (
    BACKENDS,
    DEFAULT_FPS,
    DEFAULT_MAX_FRAMES,
    DEFAULT_SNAP_SECONDS,
    MAX_WINDOW_SECONDS,
    GenerationOptions,
    SamplingOptions,
)
from smolvlm_video.registry import DEFAULT_MODEL, DEVICES, DTYPE_NAMES

F = TypeVar("F", bound=Callable[..., Any])

_SAMPLING = [
    click.option(
        "--fps", type=float, default=DEFAULT_FPS, show_default=True, help="Frames per second to sample."
    ),
    click.option(
        "--max-frames",
        type=int,
        default=DEFAULT_MAX_FRAMES,
        show_default=True,
        help="At most this many per window.",
    ),
    click.option(
        "--frame-side", type=int, default=None, help="Frame side in pixels [default: the model's, 512]."
    ),
    click.option("--start", type=float, default=None, help="Sample from this second on."),
    click.option("--end", type=float, default=None, help="Sample up to this second."),
    click.option(
        "--segment-seconds",
        type=float,
        default=MAX_WINDOW_SECONDS,
        show_default=True,
        help="Longer videos are split into windows of at most this many seconds, one prompt each.",
    ),
    click.option(
        "--backend", type=click.Choice(BACKENDS), default="auto", show_default=True, help="Frame decoder."
    ),
    click.option(
        "--snap-seconds",
        type=click.FloatRange(0, 10),
        default=DEFAULT_SNAP_SECONDS,
        show_default=True,
        help="Let a frame move this far onto a keyframe, which decodes much faster; 0: exact frames.",
    ),
]


_MODEL = [
    click.option(
        "--model", default=DEFAULT_MODEL, show_default=True, help="Registry name, Hub id or local folder."
    ),
    click.option("--revision", default=None, help="Hub revision (branch, tag or commit) to pin."),
    click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True),
    click.option("--dtype", type=click.Choice(DTYPE_NAMES), default="auto", show_default=True),
]

_GENERATION = [
    click.option(
        "--max-new-tokens", type=int, default=256, show_default=True, help="Longest answer in tokens."
    ),
    click.option(
        "--min-new-tokens",
        type=int,
        default=0,
        show_default=True,
        help="Shortest answer in tokens (the end-of-answer token is held back until then).",
    ),
    click.option(
        "--temperature", type=float, default=0.0, show_default=True, help="0 means greedy decoding."
    ),
]


def _add(options: list[Callable[[F], F]], command: F) -> F:
    for option in reversed(options):
        command = option(command)
    return command


def sampling_options(command: F) -> F:
    """Add the sampling flags to a command."""
    return _add(_SAMPLING, command)


def model_options(command: F) -> F:
    """Add --model, --revision, --device and --dtype to a command."""
    return _add(_MODEL, command)


def generation_options(command: F) -> F:
    """Add the generation flags to a command."""
    return _add(_GENERATION, command)


def build_generation(params: dict[str, Any]) -> GenerationOptions:
    """GenerationOptions from the generation flags (consumed from params)."""
    return GenerationOptions.from_temperature(
        params.pop("temperature"),
        max_new_tokens=params.pop("max_new_tokens"),
        min_new_tokens=params.pop("min_new_tokens"),
    )


def load_model_from(params: dict[str, Any], quiet: bool = False) -> Any:
    """Load the model the model flags name (consumed from params); quiet hides transformers' progress bars."""
    from transformers.utils import logging as transformers_logging

    from smolvlm_video.model import load_model

    if quiet:
        transformers_logging.disable_progress_bar()

    return load_model(params.pop("model"), params.pop("revision"), params.pop("device"), params.pop("dtype"))


def build_sampling(params: dict[str, Any]) -> SamplingOptions:
    """SamplingOptions from the sampling flags (consumed from params)."""
    return SamplingOptions(
        fps=params.pop("fps"),
        max_frames=params.pop("max_frames"),
        frame_side=params.pop("frame_side"),
        start=params.pop("start"),
        end=params.pop("end"),
        window_seconds=params.pop("segment_seconds"),
        backend=params.pop("backend"),
        snap_seconds=params.pop("snap_seconds"),
    )


def core_errors(command: F) -> F:
    """Show the core's errors as Click errors: the message, no traceback, exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SmolVLMVideoError as error:
            raise click.ClickException(str(error)) from error

    return wrapper  # type: ignore[return-value]
