"""The settings accordion, and the one place its values become the core's option objects.

The controls mirror the CLI's flags (--model, --max-frames, --fps, --start, --end,
--max-new-tokens, --temperature, --system) and build the same SamplingOptions and
GenerationOptions the CLI builds from them.
"""

from __future__ import annotations

from typing import NamedTuple

import gradio as gr

from smolvlm_video.options import DEFAULT_FPS, MAX_WINDOW_SECONDS, GenerationOptions, SamplingOptions

from .config import DemoConfig


def settings_components(config: DemoConfig) -> list[gr.components.Component]:
    """The controls, rendered where this is called (inside the settings accordion)."""
    with gr.Row():
        model = gr.Dropdown(list(config.models), value=config.model, label="Model", allow_custom_value=False)
        max_frames = gr.Slider(1, 128, value=config.max_frames, step=1, label="Max frames per video")
        fps = gr.Slider(0.1, 8, value=DEFAULT_FPS, step=0.1, label="Frames per second")
    with gr.Row():
        start = gr.Number(0, label="Window start (s)", minimum=0, info="0: the start of the video.")
        end = gr.Number(
            0,
            label="Window end (s)",
            minimum=0,
            info=f"0: {MAX_WINDOW_SECONDS:g} s after the start (a longer video is cut there).",
        )
        max_new_tokens = gr.Slider(1, 2048, value=config.max_new_tokens, step=1, label="Max new tokens")
        temperature = gr.Slider(0, 1.5, value=0, step=0.05, label="Temperature", info="0: greedy.")
    system = gr.Textbox("", label="System prompt", placeholder="Optional instructions for the model", lines=1)
    return [model, max_frames, fps, start, end, max_new_tokens, temperature, system]


class Settings(NamedTuple):
    """The settings' values as a request receives them."""

    model: str
    max_frames: float
    fps: float
    start: float | None
    end: float | None
    max_new_tokens: float
    temperature: float
    system: str

    def options(self) -> tuple[SamplingOptions, GenerationOptions]:
        """The option objects for these values; a start or end of 0 or nothing means the default.

        Raises OptionsError on impossible values.
        """
        sampling = SamplingOptions(
            fps=float(self.fps),
            max_frames=int(self.max_frames),
            start=float(self.start) if self.start else None,
            end=float(self.end) if self.end else None,
        )
        generation = GenerationOptions.from_temperature(
            float(self.temperature), max_new_tokens=int(self.max_new_tokens)
        )
        return sampling, generation
