"""The settings accordion, declared once: each setting is a field of `Settings` with the control that sets it.

The controls mirror the CLI's flags (--model, --max-frames, --fps, --start, --end,
--max-new-tokens, --temperature, --system) and build the same SamplingOptions and
GenerationOptions the CLI builds from them. A handler takes them as one `Settings` argument, its last,
keyword-only. `endpoint` wires a handler to its controls: Gradio reads an event's API parameters from its
function's signature (`inspect.signature`, which honours `__signature__`, PEP 362), so the function it gets
takes the handler's own parameters, then one per setting; and the event's inputs are the controls of those
parameters, in that order, found by name. The order is the handler's signature alone, so it cannot drift, and
a new setting goes last in every endpoint: positional API callers keep working.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import gradio as gr

from smolvlm_video.checks import whole_number
from smolvlm_video.options import (
    DEFAULT_FPS,
    MAX_WINDOW_SECONDS,
    GenerationOptions,
    SamplingOptions,
    Split,
)

from .config import DemoConfig

Control = Callable[[DemoConfig], gr.components.Component]


def _naming_the_setting(setting: str, preprocess: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A control's `preprocess` whose refusal of a value out of the control's bounds names its setting.

    Gradio's own message names only the value ("Value 1e+308 is greater than maximum value 128.").
    """

    def named(payload: Any) -> Any:
        try:
            return preprocess(payload)
        except gr.Error as error:
            raise gr.Error(f"{setting}: {error.message}", title="Cannot do that") from error

    return named


def setting(row: int, control: Control, help: str, **default: Any) -> Any:
    """A field of `Settings`: the control that sets it (made from the app config), in this accordion row.

    `help` describes it to API and MCP clients. A setting added later has a `default=`, so that callers
    that do not send it (positional API callers of before) keep working.
    """
    return field(metadata={"row": row, "control": control, "help": help}, **default)


@dataclass(frozen=True)
class Settings:
    """The settings' values as a request receives them: one field per control, in the API's order."""

    model: str = setting(
        0,
        lambda c: gr.Dropdown(list(c.models), value=c.model, label="Model", allow_custom_value=False),
        "which model answers: one of the app's choices (default: its first)",
    )
    max_frames: float = setting(
        0,
        lambda c: gr.Slider(1, 128, value=c.max_frames, step=1, label="Max frames per video"),
        "at most this many frames of a video (of each window, when analyzing) go to the model",
    )
    fps: float = setting(
        0,
        lambda c: gr.Slider(0.1, 8, value=DEFAULT_FPS, step=0.1, label="Frames per second"),
        "frames sampled per second of video, before the max_frames cap",
    )
    start: float | None = setting(
        1,
        lambda c: gr.Number(0, label="Window start (s)", minimum=0, info="0: the start of the video."),
        "second of the video to start from (0: its start)",
    )
    end: float | None = setting(
        1,
        lambda c: gr.Number(
            0,
            label="Window end (s)",
            minimum=0,
            info=f"0: {MAX_WINDOW_SECONDS:g} s after the start (a longer video is cut there).",
        ),
        f"second of the video to stop at (0: {MAX_WINDOW_SECONDS:g} s after the start for a question, "
        "the end of the video when analyzing)",
    )
    max_new_tokens: float = setting(
        1,
        lambda c: gr.Slider(1, 2048, value=c.max_new_tokens, step=1, label="Max new tokens"),
        "the answer (each window's, when analyzing) stops after this many tokens",
    )
    temperature: float = setting(
        1,
        lambda c: gr.Slider(0, 1.5, value=0, step=0.05, label="Temperature", info="0: greedy."),
        "sampling temperature (0: greedy, the same answer every time)",
    )
    system: str = setting(
        2,
        lambda c: gr.Textbox(
            "", label="System prompt", placeholder="Optional instructions for the model", lines=1
        ),
        "optional instructions for the model, before the question",
    )
    listen: bool = setting(
        2,
        lambda c: gr.Checkbox(
            False,
            label="Listen",
            info="Transcribe what is said in a video (Whisper) and give it to the model.",
        ),
        "transcribe what is said in each video (Whisper) and give it to the model before the question",
        default=False,
    )

    def options(self, split: Split = "fixed") -> tuple[SamplingOptions, GenerationOptions]:
        """The option objects for these values; a start or end of 0 or nothing means the default.

        `split`: how a video analyzed whole is cut into windows (the Analyze tab's choice).

        Raises OptionsError on impossible values.
        """
        sampling = SamplingOptions(
            fps=float(self.fps),
            max_frames=whole_number("max_frames", self.max_frames),
            start=float(self.start) if self.start else None,
            end=float(self.end) if self.end else None,
            split=split,
        )
        generation = GenerationOptions.from_temperature(
            float(self.temperature), max_new_tokens=whole_number("max_new_tokens", self.max_new_tokens)
        )
        return sampling, generation


def settings_components(config: DemoConfig) -> dict[str, gr.components.Component]:
    """The controls by setting name, in the order of `Settings`, rendered in rows where this is called."""
    controls = {}
    for _, group in itertools.groupby(fields(Settings), key=lambda f: f.metadata["row"]):
        row = list(group)
        with gr.Row() if len(row) > 1 else contextlib.nullcontext():  # one control alone: full width
            for f in row:
                controls[f.name] = control = f.metadata["control"](config)
                control.preprocess = _naming_the_setting(f.name, control.preprocess)  # type: ignore[method-assign]
    return controls


Controls = Mapping[str, gr.components.Component]


def endpoint(
    handler: Callable[..., Iterator[Any]], controls: Controls, settings: Controls
) -> tuple[Callable[..., Iterator[Any]], list[gr.components.Component]]:
    """The function Gradio calls for `handler` (`with_settings`), and its inputs: for each of its parameters,
    in order, the control of that name among the tab's `controls` and the `settings`."""
    function = with_settings(handler)
    named = {**controls, **settings}
    parameters = inspect.signature(function).parameters.values()
    return function, [named[p.name] for p in parameters if not isinstance(p.default, gr.Progress)]


def with_settings(handler: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    """`handler(..., *, settings)` as a function taking each field of `Settings` after its own parameters.

    Gradio names an endpoint's API parameters after its function's, and API and MCP clients read each one's
    description from the docstring's Args, where the `settings:` line becomes a line per setting.
    """
    signature = inspect.signature(handler)
    own = [p for p in signature.parameters.values() if p.name != "settings"]
    hints = typing.get_type_hints(handler) | typing.get_type_hints(Settings)
    # After a parameter with a default, each setting needs one too; the control's value is what Gradio sends.
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    settings = [
        inspect.Parameter(f.name, kind, default=None, annotation=hints[f.name]) for f in fields(Settings)
    ]
    parameters = [*own, *settings]
    count = len(own)

    def call(*args: Any) -> Iterator[Any]:  # a generator, so that Gradio streams what it yields
        yield from handler(*args[:count], settings=Settings(*args[count:]))

    call.__name__ = call.__qualname__ = handler.__name__
    call.__doc__ = settings_documented(handler.__doc__ or "")
    call.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    call.__annotations__ = {p.name: hints.get(p.name, p.annotation) for p in parameters}
    call.__annotations__["return"] = hints.get("return")
    return call


def settings_documented(doc: str) -> str:
    """A handler's docstring with its `settings:` argument line replaced by a line for each setting.

    Gradio's API page and MCP tools read each parameter's description from the docstring's Args.
    """
    lines = inspect.cleandoc(doc).splitlines()
    for number, line in enumerate(lines):
        if line.strip().startswith("settings:"):
            indent = line[: len(line) - len(line.lstrip())]
            lines[number : number + 1] = [f"{indent}{f.name}: {f.metadata['help']}" for f in fields(Settings)]
            break
    return "\n".join(lines)
