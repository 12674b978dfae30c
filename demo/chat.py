"""The Chat tab: a chat that always comes back ready, whatever went wrong, and can be stopped and cleared.

Built from a Chatbot and a MultimodalTextbox rather than gr.ChatInterface, whose chain of events the app
cannot reach into: there, an error left the input disabled with no send button, its toast came twice, and
no Stop showed. Here each step of a turn is an event of its own:

1. `_asking` (no queue): the question shows in the chat at once, and the input turns into a Stop button,
   its text kept.
2. `Handlers.chat_turn` streams the answer into the chat; the question's bubble gets its media once they
   are read (a video the browser cannot play shows its first sampled frame instead).
3. After it: success empties the input; on failure the handler takes the question out of the chat, and it
   stays in the input to edit; either way the input is ready again. Stop cancels step 2 (generation ends
   with it) and keeps what was answered; Clear cancels it too and empties the chat and "What the model saw".

The conversation the model reads is kept apart from what the chat shows (`history`, a State): the model
gets each turn's files, the chat may show a poster in their place.

`/chat`, the API and MCP endpoint, answers a message after the session's earlier ones, as
gr.ChatInterface's did: `chat_api`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from smolvlm_video.video import SampledVideo

from .conversation import message_files
from .settings import Controls, endpoint

EMPTY_CHAT = "**Upload a video or an image, or pick an example**, then ask about it."
QUESTION_BOX = "Upload an image or a video and ask about it"
History = list[dict[str, Any]]  # the conversation as the model reads it: role, content (text and files)


def input_box(**state: Any) -> gr.MultimodalTextbox:
    """An update of the chat's input: ready (send button) or busy (a Stop button in its place)."""
    busy = state.pop("busy", False)
    return gr.MultimodalTextbox(interactive=not busy, submit_btn=not busy, stop_btn=busy, **state)


def user_turn(message: dict[str, Any]) -> dict[str, Any]:
    """A message from the input as one user turn of `history`: its files, then its text."""
    files = [{"path": path} for path in message_files(message)]
    return {"role": "user", "content": [*files, message.get("text") or ""]}


BROWSER_CODECS = frozenset({"h264", "vp8", "vp9", "av1"})  # what browsers play, in the containers below
BROWSER_CONTAINERS = frozenset({".mp4", ".m4v", ".mov", ".webm"})


def media_shown(files: list[str], media: list[Any], folder: Path) -> list[dict[str, Any]]:
    """How the chat shows a turn's files, read as `media`: each file itself, but a video the browser cannot
    play (an AVI, MPEG-4 Part 2) as its first sampled frame, written into `folder`."""
    shown = []
    for number, (path, medium) in enumerate(zip(files, media, strict=False)):
        if not isinstance(medium, SampledVideo) or _plays_in_browser(path, medium):
            shown.append({"path": path})
            continue
        poster = folder / f"poster-{number}.jpg"
        Image.fromarray(medium.frames[0]).convert("RGB").save(poster, quality=85)
        why = f"{Path(path).name} ({medium.info.codec}), which the browser cannot play: its first frame"
        shown.append({"path": str(poster), "alt_text": why})
    return shown


def _plays_in_browser(path: str, video: SampledVideo) -> bool:
    return Path(path).suffix.lower() in BROWSER_CONTAINERS and video.info.codec in BROWSER_CODECS


def _asking(message: dict[str, Any], shown: list) -> tuple[list, Any]:
    """The question in the chat at once (file names stand for the files until they are read), and the input
    busy with the question kept in it."""
    names = ", ".join(Path(path).name for path in message_files(message))
    text = message.get("text") or ""
    bubble = {"role": "user", "content": "\n\n".join(t for t in (f"📎 {names}" if names else "", text) if t)}
    return [*shown, bubble], input_box(busy=True)


def _emptied() -> Any:
    """The input ready and empty: after an answer, or a stop (what was said stays in the chat)."""
    return input_box(value=None)


def _cleared() -> tuple[list, History, Any, None, str, Any]:
    return [], [], _emptied(), None, "", gr.Accordion(visible=False)


def chat_api(respond: Callable[..., Iterator[tuple[str, Any, Any]]]) -> Callable[..., Iterator[tuple]]:
    """The /chat endpoint: `respond(message, history, json_schema, settings...)` (`settings.with_settings`)
    streaming the answer, the frames and a line on them; the session's `history` is extended with the turn
    once it is answered."""

    def chat(message: dict[str, Any], history: History, *rest: Any) -> Iterator[tuple]:
        answer, gallery, seen = "", None, ""
        for answer, gallery, seen in respond(message, history, *rest):
            yield answer, gr.skip(), gallery, seen
        turn = [user_turn(message), {"role": "assistant", "content": answer}]
        yield answer, [*history, *turn], gallery, seen

    chat.__doc__ = respond.__doc__
    chat.__signature__ = inspect.signature(respond)  # type: ignore[attr-defined]
    return chat


def chat_tab(
    handlers: Any, examples: list[dict[str, Any]], settings: Controls, schema: Any, seen: list, seen_box: Any
) -> None:
    """The chat and its input; `examples` show in the empty chat; `seen`: the gallery and its line, in
    `seen_box`, which Clear hides."""
    history = gr.State([])
    shown = gr.Chatbot(
        label="Chat",
        placeholder=EMPTY_CHAT,
        examples=examples or None,
        elem_id="chat",
        height="60vh",
        min_height=320,
        buttons=["copy"],
    )
    box = gr.MultimodalTextbox(
        file_types=["image", "video"],
        file_count="multiple",
        placeholder=QUESTION_BOX,
        sources=["upload"],
        elem_id="chat-input",
        show_label=False,
    )
    clear = gr.Button("Clear chat", size="sm", variant="secondary", elem_id="chat-clear")
    answer = gr.Textbox(label="Answer", visible=False)  # the API's first output
    controls = {"message": box, "history": history, "shown": shown, "json_schema": schema}
    chat_turn, inputs = endpoint(handlers.chat_turn, controls, settings)
    private: dict[str, Any] = {"api_visibility": "private", "queue": False}  # the page's own steps
    turn = box.submit(_asking, [box, shown], [shown, box], **private).then(
        chat_turn, inputs, [shown, history, *seen], show_progress="hidden", api_visibility="private"
    )
    turn.success(_emptied, None, box, **private)
    turn.failure(input_box, None, box, **private)  # ready, the question kept (Gradio runs no .then here)
    box.stop(_emptied, None, box, cancels=[turn], **private)
    for cleared in (shown.clear, clear.click):  # the chat's bin, and the button under it
        # The answer is cancelled first: emptied alongside, the chat got the answer's next piece back.
        cancelled = cleared(None, None, None, cancels=[turn], **private)
        cancelled.then(_cleared, None, [shown, history, box, *seen, seen_box], **private)
    shown.example_select(_example, None, box, **private)
    api = gr.Button(visible=False)
    respond, inputs = endpoint(handlers.chat, controls, settings)
    api.click(chat_api(respond), inputs, [answer, history, *seen], api_name="chat")


def _example(selected: gr.SelectData) -> Any:
    """An example picked in the empty chat: its question and file into the input, to send or edit."""
    value = selected.value
    return gr.MultimodalTextbox(value={"text": value.get("text") or "", "files": message_files(value)})
