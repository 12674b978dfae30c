"""Click options shared by the commands: each group of flags becomes one typed core object.

A group's decorator adds its flags and passes the command one argument built from them by the core's
own builder (`sampling: SamplingOptions`, `model: ModelOptions`, `generation: GenerationOptions`), so a
command has a typed signature and the demo builds the same objects the same way. Each flag's name in
Python (its Click parameter name) is the field it sets, so the flag an error names is found among the
command's own parameters.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from smolvlm_video.batch.captioning import read_questions
from smolvlm_video.batch.clips import DEFAULT_PROMPT
from smolvlm_video.batch.engines import ENGINES
from smolvlm_video.batch.runs import Shard
from smolvlm_video.batch.sinks import SINKS
from smolvlm_video.errors import (
    ModelLoadError,
    OptionsError,
    OutputError,
    RecordsError,
    SmolVLMVideoError,
    TooLargeError,
)
from smolvlm_video.model.registry import FEATURE_CACHE_MB
from smolvlm_video.options import (
    ATTENTIONS,
    BACKENDS,
    COMPILE_MODES,
    DEFAULT_FPS,
    DEFAULT_MAX_FRAMES,
    DEFAULT_MIN_SCENE_SECONDS,
    DEFAULT_MODEL,
    DEFAULT_SNAP_SECONDS,
    DEVICES,
    DTYPE_NAMES,
    MAX_FRAME_PIXELS,
    MAX_TOTAL_PIXELS,
    MAX_WINDOW_SECONDS,
    SPLITS,
    VISION_MODES,
    GenerationOptions,
    ModelOptions,
    SamplingOptions,
)
from smolvlm_video.speech.options import SPEECH_MODES, SPEECH_TASKS, SpeechOptions

F = TypeVar("F", bound=Callable[..., Any])
Decorator = Callable[[F], F]

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
        "--model",
        "name",
        default=DEFAULT_MODEL,
        show_default=True,
        help="Registry name, Hub id or local folder.",
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
    click.option(
        "--compile",
        type=click.Choice(COMPILE_MODES),
        default="auto",
        show_default=True,
        help="Decode with a compiled step and a static cache; auto: on CUDA, where the command pays it back "
        "(not for ask).",
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


class Pair(click.ParamType):
    """A=B: the texts on either side of the first "=", both required; `example` shows the form in errors."""

    name = "A=B"
    example = "a=b"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        left, equals, right = str(value).partition("=")
        if not (equals and left.strip() and right):
            self.fail(f"{value!r} is not {self.name}, e.g. {self.example}.", param, ctx)
        return self.pair(left.strip(), right)

    def pair(self, left: str, right: str) -> tuple[str, str]:
        return left, right


class NameValue(Pair):
    """NAME=VALUE: one of an engine's own options, as text that the core reads by the option's type."""

    name, example = "NAME=VALUE", "concurrency=4"


_ENGINE = [
    click.option(
        "--engine",
        default="local",
        show_default=True,
        help=f"Where the clips are captioned: {', '.join(ENGINES)}. local: this machine. ray: a Ray cluster "
        "(pip install 'smolvlm-video[ray]').",
    ),
    click.option(
        "--engine-option",
        "engine_options",
        type=NameValue(),
        multiple=True,
        help="One of the engine's own options (repeatable). ray: address (a cluster to join; default "
        "$RAY_ADDRESS, else a local Ray), concurrency (model copies, default 1), num_gpus_per_worker "
        "(default 1 where the cluster has GPUs, else 0).",
    ),
]

_QUESTIONS = [
    click.option("--prompt", default=None, help=f"What to ask of each clip [default: {DEFAULT_PROMPT!r}]."),
    click.option(
        "--prompt-file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help='JSON object of named prompts, e.g. {"short": "...", "detailed": "..."}; each answered per '
        'clip. A prompt may carry its own schema: {"tags": {"prompt": "...", "schema": {...}}}.',
    ),
]


def _add(options: list[Decorator], command: F) -> F:
    for option in reversed(options):
        command = option(command)
    return command


def option_group(argument: str, options: list[Decorator], build: Callable[..., Any]) -> Decorator:
    """A decorator that adds `options` to a command and passes it `argument=build(**their values)`.

    `build` is the core's builder of the object: it takes the flags' values by their Click names.
    """

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def built(*args: Any, **values: Any) -> Any:
            own = {name: values.pop(name) for name in names}
            return command(*args, **{argument: build(**own)}, **values)

        before = len(getattr(built, "__click_params__", []))
        grouped = _add(options, built)
        names = [param.name for param in grouped.__click_params__[before:]]  # type: ignore[attr-defined]
        return grouped

    return decorate


_SPEECH = [
    click.option(
        "--speech",
        "mode",
        type=click.Choice(SPEECH_MODES),
        default="off",
        show_default=True,
        help="Transcribe each clip's speech once: record it, or also prompt with each window's.",
    ),
    click.option(
        "--speech-model",
        default="auto",
        show_default=True,
        help="Whisper checkpoint (Hub id or folder); auto: whisper-small on the CPU, large-v3-turbo on CUDA.",
    ),
    click.option(
        "--speech-language",
        "language",
        default=None,
        help="The spoken language's code (en) [default: detected].",
    ),
    click.option(
        "--speech-task",
        "task",
        type=click.Choice(SPEECH_TASKS),
        default="transcribe",
        show_default=True,
        help="translate: the transcript in English, whatever was spoken.",
    ),
]


def json_schema_option(command: F) -> F:
    """Add --json-schema to a command."""
    return click.option(
        "--json-schema",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Answer with JSON that follows this JSON schema file; generation is constrained to it.",
    )(command)


sampling_options = option_group("sampling", _SAMPLING, SamplingOptions)
sampling_options.__doc__ = "Add the sampling flags to a command, passed on as `sampling: SamplingOptions`."
model_options = option_group("model", _MODEL, ModelOptions)
model_options.__doc__ = (
    "Add --model, --device, --dtype, ... to a command, passed on as `model: ModelOptions`."
)
generation_options = option_group("generation", _GENERATION, GenerationOptions.from_temperature)
generation_options.__doc__ = "Add the generation flags, passed on as `generation: GenerationOptions`."
speech_options = option_group("speech", _SPEECH, SpeechOptions)
speech_options.__doc__ = "Add --speech, --speech-model, ..., passed on as `speech: SpeechOptions`."


def engine_options(command: F) -> F:
    """Add --engine and --engine-option (`engine: str`, `engine_options`: its NAME=VALUE pairs)."""
    return _add(_ENGINE, command)


question_options = option_group("questions", [*_QUESTIONS, json_schema_option], read_questions)
question_options.__doc__ = "Add --prompt, --prompt-file and --json-schema, passed on as `questions`."


def sink_option(command: F) -> F:
    """Add --sink: the records' format, a name in the core's SINKS."""
    return click.option(
        "--sink", default="jsonl", show_default=True, help=f"The records' format: {', '.join(SINKS)}."
    )(command)


def quiet_transformers() -> None:
    """Hide transformers' loading progress bars (for --quiet and machine-read output)."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


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
            ctx = click.get_current_context()
            raise click.BadParameter(str(error), ctx, _parameter(ctx, error.option)) from error
        except (ModelLoadError, OutputError, RecordsError, TooLargeError) as error:
            raise click.UsageError(str(error)) from error
        except SmolVLMVideoError as error:
            raise click.ClickException(str(error)) from error
        except KeyboardInterrupt:
            click.echo(interrupted, err=True)
            sys.exit(INTERRUPTED)

    return wrapper  # type: ignore[return-value]


def _parameter(ctx: click.Context, option: str | None) -> click.Parameter | None:
    """The command's parameter that sets the core field `option`: the flag an error about it names."""
    return next((param for param in ctx.command.params if param.name == option), None)


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
