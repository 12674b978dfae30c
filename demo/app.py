"""The page: a settings accordion, then tabs for the chat, describing a video and one question.

Every tab is also a named API endpoint (/chat, /describe_video, /ask) for gradio_client and, when
gradio[mcp] is installed and SMOLVLM_MCP=1, for MCP clients.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from smolvlm_video import __version__
from smolvlm_video.clips import DEFAULT_PROMPT

from .config import DemoConfig
from .handlers import Handlers
from .models import ModelCache
from .settings import settings_components

TITLE = "SmolVLM2 video chat"
DESCRIPTION = (
    "Ask [SmolVLM2](https://huggingface.co/collections/HuggingFaceTB/smolvlm2) about an image or a video. "
    "A video is sampled into frames (at most 3.5 minutes per question); the frames the model sees are shown "
    "above the chat."
)
EXAMPLE_QUESTIONS = [  # (question, file under examples/)
    ("What is shown in this image? Describe the colours and shapes.", "images/testcard.png"),
    ("What happens in this video?", "clips/testsrc2.mp4"),
    ("Describe how the pattern moves over time.", "clips/mandelbrot.mp4"),
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


def _examples(config: DemoConfig) -> list[dict[str, Any]]:
    found = []
    for question, name in EXAMPLE_QUESTIONS:
        path = config.examples_dir / name
        if path.exists():
            found.append({"text": question, "files": [str(path)]})
    return found


def _chat_tab(handlers: Handlers, config: DemoConfig, settings: list, seen: list) -> None:
    defaults = [component.value for component in settings]  # examples run with the default settings
    examples = [[example, *defaults] for example in _examples(config)]
    gr.ChatInterface(
        handlers.chat,
        multimodal=True,
        textbox=gr.MultimodalTextbox(
            file_types=["image", "video"],
            file_count="multiple",
            placeholder="Upload an image or a video and ask about it",
            sources=["upload"],
        ),
        additional_inputs=settings,
        additional_outputs=seen,
        examples=examples or None,
        cache_examples=config.cache_examples and bool(examples),
        cache_mode="lazy",
        api_name="chat",
        fill_height=True,
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
            button = gr.Button("Ask", variant="primary")
            stop = gr.Button("Stop", variant="stop")
    answer = gr.Textbox(label="Answer", lines=8, interactive=False)
    inputs = [media, question, *settings]
    event = gr.on([button.click, question.submit], handlers.ask, inputs, [answer, *seen], api_name="ask")
    stop.click(None, cancels=[event], api_visibility="private")


def launch_kwargs(config: DemoConfig | None = None, **overrides: Any) -> dict[str, Any]:
    """Arguments for demo.launch(): upload limit, the examples as the only served folder, MCP if asked."""
    config = config or DemoConfig.from_env()
    kwargs: dict[str, Any] = {
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
