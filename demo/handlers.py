"""What the app does per request: sample the media, show what the model saw, stream the answer.

Each handler is a generator that Gradio streams. The core's errors become gr.Error with the
core's message, so the person sees what was wrong and the app goes on serving.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Container, Iterator, Sequence
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from smolvlm_video.batch.clips import DEFAULT_PROMPT
from smolvlm_video.errors import FileError, SmolVLMVideoError
from smolvlm_video.model.features import medium_key
from smolvlm_video.model.loading import load_fitted
from smolvlm_video.model.prompts import Chat, chat_media, clock
from smolvlm_video.model.schemas import JsonSchema, Question, parse_answer
from smolvlm_video.options import GenerationOptions
from smolvlm_video.video import SampledVideo
from smolvlm_video.video.media import is_image

from .config import DemoConfig
from .conversation import check_upload, to_messages
from .models import ModelCache
from .settings import Settings, takes_settings
from .zerogpu import chat_frames, gpu_decorator, request_seconds

Gallery = list[tuple[str, str]]


class FrameStore:
    """Writes the frames the model saw as JPEG files under Gradio's upload folder, keeping the last few sets.

    The gallery gets file paths, so each frame is encoded once per request, not once per streamed token.
    """

    def __init__(self, root: Path, keep: int = 64) -> None:
        self.root = root
        self.keep = keep

    def save(self, media: Sequence[Any]) -> Gallery:
        """(path, caption) for each frame or image, in prompt order."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._prune()
        folder = Path(tempfile.mkdtemp(dir=self.root))
        gallery: Gallery = []
        for item in media:
            frames = (
                zip(item.frames, item.timestamps, strict=True) if isinstance(item, SampledVideo) else None
            )
            for frame, time in frames or [(item, None)]:
                path = folder / f"{len(gallery):03d}.jpg"
                image = Image.fromarray(frame) if isinstance(frame, np.ndarray) else frame
                image.convert("RGB").save(path, quality=85)
                gallery.append((str(path), "image" if time is None else clock(time)))
        return gallery

    def _prune(self) -> None:
        folders = sorted(self.root.iterdir(), key=lambda folder: folder.stat().st_mtime)
        for folder in folders[: max(0, len(folders) - self.keep + 1)]:
            shutil.rmtree(folder, ignore_errors=True)


CACHED = " Its vision features came from the cache: the encoder did not run for it again."


def describe_media(media: Sequence[Any], cached: Container[str] = ()) -> str:
    """A line on each image and video: for a video, the window the frames cover and their count.

    A medium whose key (`features.medium_key`) is in `cached` is said to come from the feature cache.
    """
    lines = []
    for item in media:
        line = (
            _video_line(item) if isinstance(item, SampledVideo) else f"An image, {item.width}x{item.height}."
        )
        lines.append(line + (CACHED if cached and medium_key(item) in cached else ""))
    return "\n\n".join(lines)


def _video_line(video: SampledVideo) -> str:
    window, info = video.window, video.info
    height, width = video.frames.shape[1:3]
    line = (
        f"{video.frame_count} frames of {width}x{height} from {clock(window.start)} to {clock(window.end)} "
        f"of a {clock(info.duration)} video ({video.decode_seconds:.1f} s to decode)."
    )
    if window.end < info.duration - 1 or window.start > 1:
        line += " The model sees this window only: set the window start and end in the settings for another."
    return line


class Handlers:
    """The app's request handlers, sharing one model cache and one config."""

    def __init__(self, config: DemoConfig, models: ModelCache | None = None) -> None:
        self.config = config
        self._stream = gpu_decorator(self.gpu_seconds)(self._stream_answer)  # imports spaces first
        self.models = models or ModelCache()
        if config.preload:
            self.models.preload([config.model_options(name) for name in config.models])
        uploads = Path(gr.utils.get_upload_folder())
        self.allowed = [uploads, config.examples_dir]
        self.frames = FrameStore(uploads / "smolvlm-frames")

    def gpu_seconds(self, name: str, chat: Chat, generation: GenerationOptions) -> int:
        """The ZeroGPU time one answer reserves (called with `_stream_answer`'s own arguments)."""
        frames = chat_frames(chat.messages)
        return request_seconds(name, frames, generation.max_new_tokens, self.config.gpu_seconds)

    # Each handler takes the settings as one object; Gradio sees each setting as a named API parameter.
    @takes_settings
    def chat(self, message: dict, history: list[dict], settings: Settings) -> Iterator[tuple[str, Any, Any]]:
        """The multimodal chat: (answer so far, frames seen, what was seen) as the answer streams."""
        with _as_gr_error():
            yield from self._chat(message, history, settings)

    @takes_settings
    def describe_video(
        self, video: str | None, prompt: str, settings: Settings
    ) -> Iterator[tuple[str, Any, Any]]:
        """One video, one prompt (default: describe it)."""
        with _as_gr_error():
            if not video:
                raise SmolVLMVideoError("Upload a video first.")
            if is_image(check_upload(video, self.allowed)):
                raise SmolVLMVideoError("This is an image, not a video: ask about it in the Chat or Ask tab.")
            message = {"text": prompt or DEFAULT_PROMPT, "files": [video]}
            yield from self._chat(message, [], settings)

    @takes_settings
    def ask(
        self, media: str | None, question: str, settings: Settings, json_schema: str | None = None
    ) -> Iterator[tuple[str, Any, Any]]:
        """One image or video, one question; with a JSON schema (its text), a JSON answer that follows it."""
        with _as_gr_error():
            if not media:
                raise SmolVLMVideoError("Upload an image or a video first.")
            if not question.strip():
                raise SmolVLMVideoError("Type a question.")
            schema = (
                JsonSchema(json_schema, "The JSON schema") if json_schema and json_schema.strip() else None
            )
            yield from self._chat({"files": [media]}, [], settings, Question(question, schema))

    def _chat(
        self, message: dict, history: list[dict], settings: Settings, question: Question | None = None
    ) -> Iterator[tuple[str, Any, Any]]:
        """Answer `message` after `history`; `question`, where given, is its text with its schema."""
        if settings.model not in self.config.models:
            raise SmolVLMVideoError(
                f"Unknown model {settings.model!r}; choose one of {', '.join(self.config.models)}."
            )
        sampling, generation = settings.options()
        options = self.config.model_options(settings.model)
        _, sampling = load_fitted(options, sampling, self.models.get)
        if question:
            message = {**message, "text": question.prompt()}
        messages = to_messages(history, message, sampling, self.allowed, system=settings.system or None)
        yield from self._answer(
            settings.model, Chat(tuple(messages), question and question.schema), generation
        )

    def _answer(
        self, name: str, chat: Chat, generation: GenerationOptions
    ) -> Iterator[tuple[str, Gallery, str]]:
        media = chat_media(chat.messages)
        cache = self.models.get(self.config.model_options(name)).features
        gallery, seen_text = self.frames.save(media), describe_media(media, cache)
        yield "", gallery, seen_text  # the frames show before the answer starts
        answer = ""
        for piece in self._stream(name, chat, generation):
            answer += piece
            yield answer.lstrip(), gr.skip(), gr.skip()  # the frames are sent once, not with every token
        if chat.schema:
            parse_answer(answer.strip(), generation.max_new_tokens)  # a cut-off JSON answer is an error
        yield answer.strip(), gallery, seen_text  # the final result carries everything, for API callers

    def _stream_answer(self, name: str, chat: Chat, generation: GenerationOptions) -> Iterator[str]:
        """The model's answer piece by piece; closing this generator stops generation."""
        from smolvlm_video.model.generate import stream

        # Closing this generator closes stream() through yield from, which stops and joins its thread.
        yield from stream(self.models.get(self.config.model_options(name)), chat, generation)


@contextlib.contextmanager
def _as_gr_error() -> Iterator[None]:
    """The core's errors as gr.Error; a file is named by its name alone, not by its path on the server."""
    try:
        yield
    except SmolVLMVideoError as error:
        message = f"{Path(error.path).name}: {error.cause}" if isinstance(error, FileError) else str(error)
        raise gr.Error(message, title="Cannot do that") from error
