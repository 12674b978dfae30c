"""Click options shared by the commands, and the one place that turns them into core option objects."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from smolvlm_video.batch.engines import ENGINES
from smolvlm_video.batch.ray_engine import RayOptions
from smolvlm_video.batch.runs import Shard
from smolvlm_video.errors import (
    ModelLoadError,
    OptionsError,
    OutputError,
    RecordsError,
    SmolVLMVideoError,
    TooLargeError,
)
from smolvlm_video.model.registry import (
    ATTENTIONS,
    DEFAULT_MODEL,
    DEVICES,
    DTYPE_NAMES,
    FEATURE_CACHE_MB,
    VISION_MODES,
)
from smolvlm_video.options import (
    BACKENDS,
    DEFAULT_FPS,
    DEFAULT_MAX_FRAMES,
    DEFAULT_MIN_SCENE_SECONDS,
    DEFAULT_SNAP_SECONDS,
    MAX_FRAME_PIXELS,
    MAX_TOTAL_PIXELS,
    MAX_WINDOW_SECONDS,
    SPLITS,
    GenerationOptions,
    ModelOptions,
    SamplingOptions,
)

F = TypeVar("F", bound=Callable[..., Any])

INTERRUPTED = 130  # the shell's status for a command stopped by Ctrl-C (128 + SIGINT)

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
        "--window-seconds",
        type=float,
        default=MAX_WINDOW_SECONDS,
        show_default=True,
        help="Longer videos are split into windows of at most this many seconds, one prompt each.",
    ),
    click.option(
        "--split",
        type=click.Choice(SPLITS),
        default="fixed",
        show_default=True,
        help="fixed: equal windows. scenes: a window per shot (PySceneDetect), long shots split as fixed.",
    ),
    click.option(
        "--min-scene-seconds",
        type=float,
        default=DEFAULT_MIN_SCENE_SECONDS,
        show_default=True,
        help="With --split scenes: a shot shorter than this joins the next one.",
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
    click.option(
        "--max-pixels",
        type=int,
        default=MAX_FRAME_PIXELS,
        show_default=True,
        help="Refuse videos whose frames have more pixels than this (default: 8K), before decoding any.",
    ),
    click.option(
        "--max-total-pixels",
        type=int,
        default=MAX_TOTAL_PIXELS,
        show_default=True,
        help="Refuse a window whose frames add up to more source pixels than this (frames x width x height).",
    ),
]


_MODEL = [
    click.option(
        "--model", default=DEFAULT_MODEL, show_default=True, help="Registry name, Hub id or local folder."
    ),
    click.option("--revision", default=None, help="Hub revision (branch, tag or commit) to pin."),
    click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True),
    click.option(
        "--dtype",
        type=click.Choice(DTYPE_NAMES),
        default="auto",
        show_default=True,
        help="auto: bfloat16 on CUDA 8.0+ and CPUs with native bfloat16, float16 on older GPUs.",
    ),
    click.option(
        "--attn",
        "attention",
        type=click.Choice(ATTENTIONS),
        default="auto",
        show_default=True,
        help="Attention kernel; auto: flash_attention_2 on CUDA 8.0+ with flash_attn, else sdpa.",
    ),
    click.option(
        "--vision",
        type=click.Choice(VISION_MODES),
        default="auto",
        show_default=True,
        help="Vision encoder calls: one for a whole batch, or one per chat; auto: batched on CUDA only.",
    ),
    click.option(
        "--feature-cache-mb",
        type=click.IntRange(min=0),
        default=None,
        help="MB of recent media's vision features kept for reuse [default: "
        f"{FEATURE_CACHE_MB['cpu']} on the CPU, {FEATURE_CACHE_MB['cuda']} on CUDA; 0: none].",
    ),
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


_ENGINE = [
    click.option(
        "--engine",
        type=click.Choice(list(ENGINES)),
        default="local",
        show_default=True,
        help="local: this machine. ray: a Ray cluster (pip install 'smolvlm-video[ray]').",
    ),
    click.option(
        "--ray-address", default=None, help="Ray cluster to join [default: $RAY_ADDRESS, else a local Ray]."
    ),
    click.option(
        "--concurrency",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Ray engine: model copies (actors) generating at once.",
    ),
    click.option(
        "--num-gpus-per-worker",
        type=click.FloatRange(min=0),
        default=None,
        help="Ray engine: GPUs per actor [default: 1 where the cluster has GPUs, else 0].",
    ),
]


def _add(options: list[Callable[[F], F]], command: F) -> F:
    for option in reversed(options):
        command = option(command)
    return command


def json_schema_option(command: F) -> F:
    """Add --json-schema to a command."""
    return click.option(
        "--json-schema",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Answer with JSON that follows this JSON schema file; generation is constrained to it.",
    )(command)


def sampling_options(command: F) -> F:
    """Add the sampling flags to a command."""
    return _add(_SAMPLING, command)


def model_options(command: F) -> F:
    """Add --model, --revision, --device, --dtype, --attn, --vision and --feature-cache-mb to a command."""
    return _add(_MODEL, command)


def generation_options(command: F) -> F:
    """Add the generation flags to a command."""
    return _add(_GENERATION, command)


def engine_options(command: F) -> F:
    """Add --engine and the Ray engine's flags to a command."""
    return _add(_ENGINE, command)


def build_ray(params: dict[str, Any]) -> RayOptions:
    """RayOptions from the Ray engine's flags (--engine itself stays in params)."""
    return RayOptions(params.pop("ray_address"), params.pop("concurrency"), params.pop("num_gpus_per_worker"))


def build_generation(params: dict[str, Any]) -> GenerationOptions:
    """GenerationOptions from the generation flags (consumed from params)."""
    return GenerationOptions.from_temperature(
        params.pop("temperature"),
        max_new_tokens=params.pop("max_new_tokens"),
        min_new_tokens=params.pop("min_new_tokens"),
    )


def build_model(params: dict[str, Any]) -> ModelOptions:
    """ModelOptions from the model flags (consumed from params)."""
    return ModelOptions(
        name=params.pop("model"),
        revision=params.pop("revision"),
        device=params.pop("device"),
        dtype=params.pop("dtype"),
        attention=params.pop("attention"),
        vision=params.pop("vision"),
        feature_cache_mb=params.pop("feature_cache_mb"),
    )


def quiet_transformers() -> None:
    """Hide transformers' loading progress bars (for --quiet and machine-read output)."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def build_sampling(params: dict[str, Any]) -> SamplingOptions:
    """SamplingOptions from the sampling flags (consumed from params)."""
    return SamplingOptions(
        fps=params.pop("fps"),
        max_frames=params.pop("max_frames"),
        frame_side=params.pop("frame_side"),
        start=params.pop("start"),
        end=params.pop("end"),
        window_seconds=params.pop("window_seconds"),
        backend=params.pop("backend"),
        snap_seconds=params.pop("snap_seconds"),
        split=params.pop("split"),
        min_scene_seconds=params.pop("min_scene_seconds"),
        max_pixels=params.pop("max_pixels"),
        max_total_pixels=params.pop("max_total_pixels"),
    )


# The flag of each core option field whose name differs from its flag's.
FLAGS = {"name": "--model", "prompts": "--prompt-file",
         "inputs": "PATHS", "attention": "--attn",
         # export's options: ExportOptions and CutOptions
         "format": "--to", "mode": "--cut", "codec": "--clip-codec", "crf": "--clip-crf",
         "preset": "--clip-preset", "side": "--clip-side"}  # fmt: skip


def flag(option: str | None) -> str | None:
    """The command-line flag for a field of a core option object ("max_frames" -> "--max-frames")."""
    if option is None:
        return None
    return FLAGS.get(option, "--" + option.replace("_", "-"))


def core_errors(command: F | None = None, *, interrupted: str = "Interrupted.") -> Any:
    """Show the core's errors as Click errors, with no traceback, and give each its exit status.

    The one place Ctrl-C is handled: `interrupted` is what a command says then
    (`@core_errors(interrupted=...)`).

    2: a usage error: an option value the core rejects (naming its flag), a model that cannot be
    loaded, an output that cannot be written, a records file with a line that is not a record, a file
    over the pixel budget (--max-pixels).
    1: anything else the core raises on purpose.
    130: Ctrl-C, at any moment.
    """
    if command is None:
        return functools.partial(core_errors, interrupted=interrupted)

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except OptionsError as error:
            raise click.BadParameter(str(error), param_hint=flag(error.option)) from error
        except (ModelLoadError, OutputError, RecordsError, TooLargeError) as error:
            raise click.UsageError(str(error)) from error
        except SmolVLMVideoError as error:
            raise click.ClickException(str(error)) from error
        except KeyboardInterrupt:
            click.echo(interrupted, err=True)
            sys.exit(INTERRUPTED)

    return wrapper  # type: ignore[return-value]


class ShardType(click.ParamType):
    """I/N: this machine's share, 0 <= I < N."""

    name = "I/N"

    def convert(self, value: Any, param: Any, ctx: Any) -> Shard:
        if isinstance(value, Shard):
            return value
        try:
            return Shard.parse(str(value))
        except OptionsError as error:
            self.fail(str(error), param, ctx)
