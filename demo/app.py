"""The page: a settings accordion, the frames the model saw, then a tab for each way to use the model.

Every tab but Live is also a named API endpoint (/chat, /analyze, /describe_video, /ask) for
gradio_client and, with SMOLVLM_MCP=1, a tool for MCP clients.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr
from gradio.exceptions import InvalidPathError

from smolvlm_video import __version__

from . import tabs
from .chat import chat_tab
from .config import DemoConfig
from .conversation import UploadRefused
from .handlers import Handlers
from .head import STORAGE_FALLBACK
from .models import ModelCache
from .settings import settings_components

logger = logging.getLogger(__name__)

TITLE = "SmolVLM2 video chat"
DESCRIPTION = (
    "Ask [SmolVLM2](https://huggingface.co/collections/HuggingFaceTB/smolvlm2) about an image or a video, "
    "analyze a video shot by shot, or let it watch your camera. A video is sampled into frames (at most "
    "3.5 minutes per question)."
)
# System fonts only: the page then loads nothing from outside its server (offline use, strict embeds).
# Text colours darkened (lightened in the dark theme) to WCAG AA's 4.5:1 against their background: the Soft
# theme's labels measured 3.63:1, hints and slider bounds 2.54:1, dark placeholders 2.13:1.
THEME = gr.themes.Soft(
    font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
).set(
    block_label_text_color="*primary_700",
    block_title_text_color="*primary_700",
    block_info_text_color="*neutral_600",
    block_info_text_color_dark="*neutral_300",
    body_text_color_subdued="*neutral_600",
    body_text_color_subdued_dark="*neutral_300",
    input_placeholder_color="*neutral_500",
    input_placeholder_color_dark="*neutral_300",
    checkbox_label_background_fill_selected="*primary_600",
)
# Narrow screens (a phone, a 400 px embed): controls wrap instead of pushing the page sideways.
CSS = """
/* An error is said once, in its toast: no "Error" badge over the outputs of the request that failed (or was
   stopped), which covered the chat and the frames until reload. */
[data-testid="status-tracker"]:has(> span.error) { display: none !important; }
/* The frames the model saw, each in a cell of its own size: Gradio gave a lone image the whole width, cut
   to a strip by the gallery's height. */
#seen-frames .grid-container { grid-template-columns: repeat(auto-fill, minmax(120px, 180px)) !important; }
@media (max-width: 640px) {
  .gradio-container { padding-left: 4px !important; padding-right: 4px !important; }
  .gradio-container .row { flex-wrap: wrap; }
  .gradio-container .row > * { min-width: min(100%, 160px) !important; }
}
"""


def build_demo(config: DemoConfig | None = None, models: ModelCache | None = None) -> gr.Blocks:
    """The whole app as gr.Blocks; call .launch(**launch_kwargs(config)) on it."""
    config = config or DemoConfig.from_env()
    handlers = Handlers(config, models)
    with gr.Blocks(title=TITLE, fill_height=True) as demo:
        gr.Markdown(f"# {TITLE}\n{DESCRIPTION}")
        with gr.Accordion("Settings", open=False):
            settings = settings_components(config)
            chat_schema = tabs.schema_box("The chat's answers are JSON that follows it.")
        # Hidden until a request has frames to show, so an empty box takes no room on a first visit.
        with gr.Accordion("What the model saw", open=True, visible=False) as seen_box:
            seen_text = gr.Markdown(label="What the model saw")
            gallery = gr.Gallery(
                label="Frames",
                columns=8,
                height=220,
                object_fit="contain",
                format="jpeg",
                show_label=False,
                elem_id="seen-frames",
            )
        gallery.change(_shown, gallery, seen_box, api_visibility="private", queue=False)
        seen = [gallery, seen_text]
        with gr.Tab("Chat"):
            chat_tab(handlers, tabs.chat_examples(config), settings, chat_schema, seen, seen_box)
        with gr.Tab("Analyze a video"):
            tabs.analyze_tab(handlers, config, settings)
        with gr.Tab("Live camera"):
            tabs.live_tab(handlers, settings)
        with gr.Tab("Describe a video"):
            tabs.describe_tab(handlers, settings, seen)
        with gr.Tab("Ask"):
            tabs.ask_tab(handlers, settings, seen)
        gr.Markdown(f"smolvlm-video {__version__}. Uploads up to {config.max_file_size}.")
    demo.queue(default_concurrency_limit=config.concurrency, max_size=config.queue_size)
    _refusing_server_paths_in_words(demo)
    return demo


def _refusing_server_paths_in_words(demo: gr.Blocks) -> None:
    """A request naming a file on the server, not an upload, is refused with the app's own message.

    Gradio refuses it before any handler runs (its InvalidPathError), and a client then reads only "error".
    """
    preprocess = demo.preprocess_data

    async def preprocess_data(*args: Any, **kwargs: Any) -> Any:
        try:
            return await preprocess(*args, **kwargs)
        except InvalidPathError as error:
            raise gr.Error(UploadRefused.MESSAGE, title="Cannot do that") from error

    demo.preprocess_data = preprocess_data  # type: ignore[method-assign]


def _shown(frames: list | None) -> Any:
    """ "What the model saw" shows while it has frames: hidden again once the chat is cleared."""
    return gr.Accordion(visible=bool(frames))


def launch_kwargs(config: DemoConfig | None = None, **overrides: Any) -> dict[str, Any]:
    """Arguments for demo.launch(): theme, head script, upload limit, served folders, MCP if asked."""
    config = config or DemoConfig.from_env()
    kwargs: dict[str, Any] = {
        "theme": THEME,
        "css": CSS,
        "head": STORAGE_FALLBACK,
        "max_file_size": config.max_file_size,
        "allowed_paths": [str(config.examples_dir)],
        "footer_links": ["api", "gradio"],
    }
    kwargs["mcp_server"] = mcp_enabled(config)
    return {**kwargs, **overrides}


def mcp_enabled(config: DemoConfig) -> bool:
    """Whether the app also serves MCP: asked for (SMOLVLM_MCP=1) and installed. Says which, in the log."""
    if not config.mcp_server:
        logger.info("MCP server off (SMOLVLM_MCP=1 turns it on).")
        return False
    if not _mcp_installed():
        logger.warning("MCP server off: SMOLVLM_MCP=1 asks for it, but the mcp package is missing "
                       "(pip install 'smolvlm-video[demo]').")  # fmt: skip
        return False
    logger.info("MCP server on: tools at /gradio_api/mcp/ (SSE: /gradio_api/mcp/sse).")
    return True


def _mcp_installed() -> bool:
    try:
        import mcp  # noqa: F401
    except ImportError:
        return False
    return True
