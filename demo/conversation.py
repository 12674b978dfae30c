"""Turn a Gradio chat history into the core's messages, loading each upload once.

A follow-up question keeps the images and videos of earlier turns in the prompt, as SmolVLM was
trained to see them. A sampled video is cached by path, modification time and sampling options,
so a follow-up does not decode it again.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from smolvlm_video.errors import SmolVLMVideoError
from smolvlm_video.model.prompts import Message
from smolvlm_video.options import SamplingOptions
from smolvlm_video.video.media import Media, load_media


class UploadRefused(SmolVLMVideoError):
    """A media path that is neither an upload nor a shipped example: the app reads no other files."""

    code = "refused"
    MESSAGE = "Only uploaded files can be used; upload the image or video instead of naming a path."


def check_upload(path: str, allowed: Sequence[Path]) -> str:
    """The path, if it lies in one of the allowed folders (Gradio's uploads, the examples)."""
    real = Path(os.path.realpath(path))
    if not any(real.is_relative_to(folder.resolve()) for folder in allowed):
        raise UploadRefused(UploadRefused.MESSAGE)
    return str(real)


@functools.lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, sampling: SamplingOptions) -> Media:
    return load_media(path, sampling)


def load_upload(path: str, sampling: SamplingOptions, allowed: Sequence[Path]) -> Media:
    """The image or sampled video at an uploaded path (cached)."""
    path = check_upload(path, allowed)
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        mtime = 0  # load_media reports the missing file
    return _load(path, mtime, sampling)


def message_files(message: dict[str, Any]) -> list[str]:
    """The paths of a MultimodalTextbox value's files (each a path, or a file dict with one)."""
    return [f if isinstance(f, str) else f["path"] for f in message.get("files") or []]


def parts(content: Any) -> tuple[list[str], list[str]]:
    """(texts, file paths) of one message's content, in any of the shapes Gradio uses."""
    texts: list[str] = []
    files: list[str] = []
    items = content if isinstance(content, list | tuple) and not _is_file_tuple(content) else [content]
    for item in items:
        if isinstance(item, str):
            texts.append(item)
        elif _is_file_tuple(item):
            files.append(item[0])
        elif isinstance(item, dict):
            if item.get("type") == "text":
                texts.append(item.get("text", ""))
            elif item.get("type") == "file":
                files.append(item["file"]["path"])
            elif "path" in item:
                files.append(item["path"])
            elif "text" in item or "files" in item:  # a MultimodalTextbox value
                texts.append(item.get("text") or "")
                files.extend(message_files(item))
    return texts, files


def _is_file_tuple(item: Any) -> bool:
    return isinstance(item, tuple) and len(item) in (1, 2) and isinstance(item[0], str) and os.sep in item[0]


def to_messages(
    history: Iterable[dict[str, Any]],
    message: dict[str, Any],
    sampling: SamplingOptions,
    allowed: Sequence[Path],
    system: str | None = None,
) -> list[Message]:
    """The whole conversation as core messages: earlier turns with their media, then this one."""
    messages = [Message.system(system)] if system else []
    pending: list[Media] = []  # Gradio stores a file and its question as separate user messages
    for turn in history:
        texts, files = parts(turn.get("content"))
        if turn.get("role") == "assistant":
            if pending:
                messages.append(Message.user(*pending))
                pending = []
            messages.append(Message.assistant(" ".join(texts)))
            continue
        pending.extend(load_upload(path, sampling, allowed) for path in files)
        if any(t.strip() for t in texts):
            messages.append(Message.user(*pending, " ".join(texts)))
            pending = []
    texts, files = parts(message)
    pending.extend(load_upload(path, sampling, allowed) for path in files)
    question = " ".join(t for t in texts if t.strip())
    if not question and not pending:
        raise SmolVLMVideoError("Type a question, or upload an image or a video with it.")
    messages.append(Message.user(*pending, question or "Describe this."))
    return messages
