"""The page: a settings accordion, then tabs for the chat, describing a video and one question.

Every tab is also a named API endpoint (/chat, /describe_video, /ask) for gradio_client and, when
gradio[mcp] is installed and SMOLVLM_MCP=1, for MCP clients.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from smolvlm_video import __version__
from smolvlm_video.batch.clips import DEFAULT_PROMPT

from .config import DemoConfig
from .handlers import Handlers
from .head import STORAGE_FALLBACK
from .models import ModelCache
from .settings import settings_components

TITLE = "SmolVLM2 video chat"
DESCRIPTION = (
    "Ask [SmolVLM2](https://huggingface.co/collections/HuggingFaceTB/smolvlm2) about an image or a video. "
    "A video is sampled into frames (at most 3.5 minutes per question); the frames the model sees are shown "
    "above the chat."
)
# System fonts only: the page then loads nothing from outside its server (offline use, strict embeds).
THEME = gr.themes.Soft(
    font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
)
EXAMPLE_QUESTIONS = [  # (label, question, file under examples/)
    (
        "Test card (image)",
        "What is shown in this image? Describe the colours and shapes.",
        "images/testcard.png",
    ),
    ("Test pattern (video)", "What happens in this video?", "clips/testsrc2.mp4"),
    ("Mandelbrot zoom (video)", "Describe how the picture changes over time.", "clips/mandelbrot.mp4"),
]


def build_demo(config: DemoConfig | None = None, models: ModelCache | None = None) -> gr.Blocks:
    """The whole app as gr.Blocks; call .queue() and .launch(**launch_kwargs(config)) on it."""
    config = config or DemoConfig.from_env()
    handlers = Handlers(config, models)
    with gr.Blocks(title=TITLE, fill_height=True) as demo:
        gr.Markdown(f"# {TITLE}\n{DESCRIPTION}")
        with gr.Accordion("Settings", open=False):
            settings = settings_components(config)
        with gr.Accordion("What the model saw", open=True):
            seen_text = gr.Markdown()
            gallery = gr.Gallery(label="Frames", columns=8, height=220, format="jpeg", show_label=False)
        with gr.Tab("Chat"):
            _chat_tab(handlers, config, settings, [gallery, seen_text])
        with gr.Tab("Describe a video"):
            _describe_tab(handlers, settings, [gallery, seen_text])
        with gr.Tab("Ask"):
            _ask_tab(handlers, settings, [gallery, seen_text])
        gr.Markdown(f"smolvlm-video {__version__}. Uploads up to {config.max_file_size}.")
    demo.queue(default_concurrency_limit=config.concurrency, max_size=config.queue_size)
    return demo


def _examples(config: DemoConfig) -> list[tuple[str, dict[str, Any]]]:
    """(label, chat message) for each example whose file is present (a wheel ships no examples)."""
    found = []
    for label, question, name in EXAMPLE_QUESTIONS:
        path = config.examples_dir / name
        if path.exists():
            found.append((label, {"text": question, "files": [str(path)]}))
    return found


def _chat_tab(handlers: Handlers, config: DemoConfig, settings: list, seen: list) -> None:
    textbox = gr.MultimodalTextbox(
        file_types=["image", "video"],
        file_count="multiple",
        placeholder="Upload an image or a video and ask about it",
        sources=["upload"],
    )
    gr.ChatInterface(
        handlers.chat,
        multimodal=True,
        textbox=textbox,
        additional_inputs=settings,
        additional_outputs=seen,
        api_name="chat",
        fill_height=True,
    )
    found = _examples(config)
    if found:  # a click fills in the question and the file; the current settings apply when it is sent
        gr.Examples(
            [[message] for _, message in found],
            inputs=[textbox],
            example_labels=[label for label, _ in found],
            label="Examples",
        )


def _describe_tab(handlers: Handlers, settings: list, seen: list) -> None:
    with gr.Row():
        video = gr.Video(label="Video", sources=["upload"])
        with gr.Column():
            prompt = gr.Textbox(DEFAULT_PROMPT, label="Prompt")
            button = gr.Button("Describe", variant="primary")
            stop = gr.Button("Stop", variant="stop")
    answer = gr.Textbox(label="Description", lines=8, interactive=False)
    event = button.click(
        handlers.describe_video, [video, prompt, *settings], [answer, *seen], api_name="describe_video"
    )
    stop.click(None, cancels=[event], api_visibility="private")


def _ask_tab(handlers: Handlers, settings: list, seen: list) -> None:
    with gr.Row():
        media = gr.File(label="Image or video", file_types=["image", "video"], file_count="single")
        with gr.Column():
            question = gr.Textbox(label="Question", placeholder="What is happening here?")
            schema = gr.Code(
                label="JSON schema (optional): the answer is JSON that follows it", language="json"
            )
            button = gr.Button("Ask", variant="primary")
            stop = gr.Button("Stop", variant="stop")
    answer = gr.Textbox(label="Answer", lines=8, interactive=False)
    inputs = [media, question, *settings, schema]
    event = gr.on([button.click, question.submit], handlers.ask, inputs, [answer, *seen], api_name="ask")
    stop.click(None, cancels=[event], api_visibility="private")


def launch_kwargs(config: DemoConfig | None = None, **overrides: Any) -> dict[str, Any]:
    """Arguments for demo.launch(): theme, head script, upload limit, served folders, MCP if asked."""
    config = config or DemoConfig.from_env()
    kwargs: dict[str, Any] = {
        "theme": THEME,
        "head": STORAGE_FALLBACK,
        "max_file_size": config.max_file_size,
        "allowed_paths": [str(config.examples_dir)],
        "footer_links": ["api", "gradio"],
    }
    if config.mcp_server and _mcp_installed():
        kwargs["mcp_server"] = True
    return {**kwargs, **overrides}


def _mcp_installed() -> bool:
    try:
        import mcp  # noqa: F401
    except ImportError:
        return False
    return True
