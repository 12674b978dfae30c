"""What the app does per request: sample the media, show what the model saw, stream the answer.

Each handler is a generator that Gradio streams. The core's errors become gr.Error with the
core's message, so the person sees what was wrong and the app goes on serving.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Container, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from smolvlm_video.batch.captioning import CaptionJob
from smolvlm_video.batch.clips import DEFAULT_PROMPT
from smolvlm_video.batch.prefetch import PlannedClip, plan_clip
from smolvlm_video.batch.records import CaptionRecord
from smolvlm_video.errors import FileError, SmolVLMVideoError
from smolvlm_video.model.loading import load_fitted
from smolvlm_video.model.media import chat_media, medium_key
from smolvlm_video.model.prompts import Chat, Message, asking, clock
from smolvlm_video.model.schemas import JsonSchema, parse_answer
from smolvlm_video.options import GenerationOptions, ModelOptions, Split
from smolvlm_video.speech import SpeechOptions, Transcript, with_speech
from smolvlm_video.video import SampledVideo
from smolvlm_video.video.media import is_image

from .analysis import (
    TimelineRow,
    analysis_job,
    analysis_steps,
    named_record,
    record_error,
    timeline_html,
    write_downloads,
)
from .chat import History, media_shown, user_turn
from .config import DemoConfig
from .conversation import check_upload, message_files, to_messages
from .frames import Gallery, RequestFolders, save_frames
from .live import LIVE_MAX_NEW_TOKENS, LIVE_PROMPT, LiveEntry, LiveLog, arrival, log_html
from .models import ModelCache, Span, TranscriptCache
from .settings import Settings
from .zerogpu import analysis_seconds, chat_frames, gpu_decorator, request_seconds, speech_seconds

CACHED = " Its vision features came from the cache: the encoder did not run for it again."


def describe_media(media: Sequence[Any], cached: Container[str] = ()) -> str:
    """A line on each image and video: for a video, the window the frames cover and their count.

    A medium whose key (`media.medium_key`) is in `cached` is said to come from the feature cache.
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
    """The app's request handlers, sharing one model cache and one config.

    Their docstrings are what API and MCP clients read about each endpoint (Gradio parses the Args).
    """

    def __init__(self, config: DemoConfig, models: ModelCache | None = None) -> None:
        self.config = config
        # On ZeroGPU each of these runs under @spaces.GPU, sized by its own arguments; elsewhere as it is.
        self._stream = gpu_decorator(self.gpu_seconds)(self._stream_answer)  # imports spaces first
        self._analysis = gpu_decorator(self.analysis_gpu_seconds)(self._analysis_steps)
        self._listen = gpu_decorator(self.listen_gpu_seconds)(self._transcribe)
        self.models = models or ModelCache()
        self.transcripts = TranscriptCache()
        if config.preload:
            self.models.preload([config.model_options(name) for name in config.models])
        uploads = Path(gr.utils.get_upload_folder())
        self.allowed = [uploads, config.examples_dir]
        self.frames = RequestFolders(uploads / "smolvlm-frames", keep=config.kept_requests)
        self.downloads = RequestFolders(uploads / "smolvlm-analysis", keep=config.kept_requests)

    def gpu_seconds(self, name: str, chat: Chat, generation: GenerationOptions) -> int:
        """The ZeroGPU time one answer reserves (called with `_stream_answer`'s own arguments)."""
        frames = chat_frames(chat.messages)
        return request_seconds(name, frames, generation.max_new_tokens, self.config.gpu_seconds)

    def analysis_gpu_seconds(self, name: str, job: CaptionJob, clip: PlannedClip) -> int:
        """The ZeroGPU time one analysis reserves: its windows' frames and answers, and its speech."""
        return analysis_seconds(name, job, clip, self.config.gpu_seconds)

    def listen_gpu_seconds(self, name: str, speech: SpeechOptions, spans: list[Span]) -> int:
        """The ZeroGPU time transcribing these spans of videos reserves."""
        return speech_seconds(sum(end - start for _, start, end in spans), self.config.gpu_seconds)

    def _transcribe(self, name: str, speech: SpeechOptions, spans: list[Span]) -> list[Transcript]:
        """Each (path, start, end) span's transcript, by the speech model held beside model `name`. Paths,
        not frames, cross to ZeroGPU's process."""
        transcribing = self.models.speech(speech, self.models.get(self.config.model_options(name)))
        return [transcribing.transcribe(path, start, end) for path, start, end in spans]

    # Each handler takes the settings as one object, last; Gradio sees each setting as an API parameter
    # (`settings.endpoint`).
    def chat(
        self, message: dict, history: list[dict], json_schema: str | None = None, *, settings: Settings
    ) -> Iterator[tuple[str, Any, Any]]:
        """Chat about images and videos: follow-up questions keep the media of earlier turns.

        Send a file as a data: URI, which every client can; an https URL works too. Only a client that has
        Gradio's upload_file_to_gradio tool may use it instead, and pass the path it returns.

        Args:
            message: the question and any images or videos, {"text": ..., "files": [data: URIs or https URLs]}
            history: the conversation so far (kept per client session by the app)
            json_schema: optional JSON schema (its text); the answer to this message is JSON that follows it
            settings: the settings
        Returns:
            The answer (streamed), the frames the model saw (image paths with their times), and a line on
            what it saw.
        """
        with _as_gr_error():
            yield from self._chat(message, history, settings, _schema(json_schema))

    def describe_video(
        self, video: str | None, prompt: str, *, settings: Settings
    ) -> Iterator[tuple[str, Any, Any]]:
        """Describe one video, or answer one prompt about it.

        Send a file as a data: URI, which every client can; an https URL works too. Only a client that has
        Gradio's upload_file_to_gradio tool may use it instead, and pass the path it returns.

        Args:
            video: the video, as a data: URI (data:video/mp4;base64,...) or an https URL
            prompt: what to ask (empty: describe the video in detail)
            settings: the settings
        Returns:
            The answer (streamed), the frames the model saw (image paths with their times), and a line on
            what it saw.
        """
        with _as_gr_error():
            if not video:
                raise SmolVLMVideoError("Upload a video first.")
            if is_image(check_upload(video, self.allowed)):
                raise SmolVLMVideoError("This is an image, not a video: ask about it in the Chat or Ask tab.")
            message = {"text": prompt or DEFAULT_PROMPT, "files": [video]}
            yield from self._chat(message, [], settings)

    def ask(
        self, media: str | None, question: str, json_schema: str | None = None, *, settings: Settings
    ) -> Iterator[tuple[str, Any, Any]]:
        """Ask one question about one image or video; with a JSON schema, the answer is JSON that follows it.

        Send a file as a data: URI, which every client can; an https URL works too. Only a client that has
        Gradio's upload_file_to_gradio tool may use it instead, and pass the path it returns.

        Args:
            media: the image or video, as a data: URI (data:image/png;base64,...) or an https URL
            question: the question about it
            json_schema: optional JSON schema (its text), e.g. {"type": "object", "properties": {...}}
            settings: the settings
        Returns:
            The answer (streamed; JSON text with a schema), the frames the model saw (image paths with their
            times), and a line on what it saw.
        """
        with _as_gr_error():
            if not media:
                raise SmolVLMVideoError("Upload an image or a video first.")
            if not question.strip():
                raise SmolVLMVideoError("Type a question.")
            yield from self._chat({"files": [media], "text": question}, [], settings, _schema(json_schema))

    def analyze(
        self,
        video: str | None,
        prompt: str,
        split: Split,
        json_schema: str | None = None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (Gradio's marker for its progress tracker)
        *,
        settings: Settings,
    ) -> Iterator[tuple[str, Any, Any]]:
        """Caption a whole video window by window, or shot by shot: the record `smolvlm-video caption` writes.

        Send a file as a data: URI, which every client can; an https URL works too. Only a client that has
        Gradio's upload_file_to_gradio tool may use it instead, and pass the path it returns.

        Args:
            video: the video, as a data: URI (data:video/mp4;base64,...) or an https URL
            prompt: what to ask about each window (empty: describe it in detail)
            split: "fixed" for equal windows of up to 3.5 minutes, "scenes" for a window per shot
            json_schema: optional JSON schema (its text); each window's answer is JSON that follows it
            settings: the settings
        Returns:
            The timeline (HTML, a row per window), the record (JSON: a `windows` list with each window's
            start, end, caption and answers), and the record, SRT and WebVTT subtitles as files.
        """
        with _as_gr_error():
            if not video:
                raise SmolVLMVideoError("Upload a video first.")
            path = check_upload(video, self.allowed)
            if is_image(path):
                raise SmolVLMVideoError("This is an image, not a video: ask about it in the Ask tab.")
            job = analysis_job(self._model_options(settings), prompt, split, _schema(json_schema), settings)
            job = replace(job, speech=self.config.speech_options(bool(settings.listen)))
            _, sampling = load_fitted(job.model, job.sampling, self.models.get)
            job = replace(job, sampling=sampling)
            clip = plan_clip(path, job.sampling)  # probing and finding shots need no GPU
            if clip.error is not None:
                raise clip.error
            rows: list[TimelineRow] = []
            progress((0, clip.window_count), desc="Analyzing", unit="windows")
            for step in self._analysis(settings.model, job, clip):
                if isinstance(step, TimelineRow):
                    rows.append(step)
                    progress((len(rows), clip.window_count), desc="Analyzing", unit="windows")
                    yield timeline_html(rows), gr.skip(), gr.skip()
                    continue
                record = named_record(step, Path(path).name)
                if record.status != "ok":
                    raise record_error(record)
                with self.downloads.hold() as folder:
                    yield timeline_html(rows), record.to_json(indent=2), write_downloads(record, folder)

    def _analysis_steps(
        self, name: str, job: CaptionJob, clip: PlannedClip
    ) -> Iterator[TimelineRow | CaptionRecord]:
        model = self.models.get(job.model)
        if job.speech.on:  # once for the clip, on the GPU this call holds
            transcript = self.models.speech(job.speech, model).transcribe(
                clip.path, job.sampling.start, job.sampling.end
            )
            clip = replace(clip, transcript=transcript)
        yield from analysis_steps(model, job, clip)

    def live(
        self, frame: np.ndarray | None, question: str, interval: float, log: LiveLog, *, settings: Settings
    ) -> Iterator[tuple[Any, Any]]:
        """One camera frame: answered if `interval` seconds passed since the last answer began, else dropped.

        Args:
            frame: the camera's frame
            question: the standing question (empty: describe what the camera sees)
            interval: seconds between answers
            log: the session's answers so far
            settings: the settings
        """
        started = time.monotonic()
        if frame is None or not log.due(float(interval), started):
            yield gr.skip(), gr.skip()
            return
        with _as_gr_error():
            at, arrived = arrival()
            _, generation = settings.options()
            generation = replace(
                generation, max_new_tokens=min(generation.max_new_tokens, LIVE_MAX_NEW_TOKENS)
            )
            system = [Message.system(settings.system)] if settings.system else []
            chat = Chat((*system, Message.user(Image.fromarray(frame), question.strip() or LIVE_PROMPT)))
            self._model_options(settings)  # only a model the app offers
            answer = "".join(self._stream(settings.model, chat, generation)).strip()
            entry = LiveEntry(at, arrived, time.monotonic() - started, question.strip(), answer)
            log = log.add(entry, started)
            yield log_html(log), log

    def _model_options(self, settings: Settings) -> ModelOptions:
        """How the model the settings name loads here; one the app does not offer is an error."""
        if settings.model not in self.config.models:
            raise SmolVLMVideoError(
                f"Unknown model {settings.model!r}; choose one of {', '.join(self.config.models)}."
            )
        return self.config.model_options(settings.model)

    def chat_turn(
        self,
        message: dict,
        history: History,
        shown: list,
        json_schema: str | None = None,
        *,
        settings: Settings,
    ) -> Iterator[tuple[list, History, Any, Any]]:
        """`chat` for the Chat tab: the chat as shown (`shown`, its last bubble the question) with the
        question's media and the answer so far, and `history` with the turn (what was answered, if stopped).
        On an error, the chat is shown as it was before the question, which stays in the input to edit.
        """
        with _as_gr_error():
            try:
                yield from self._chat_turn(message, history, shown, settings, json_schema)
            except Exception:
                yield shown[:-1], history, gr.skip(), gr.skip()
                raise

    def _chat_turn(
        self, message: dict, history: History, shown: list, settings: Settings, json_schema: str | None
    ) -> Iterator[tuple[list, History, Any, Any]]:
        """The turn, shown as it goes."""
        name, chat, generation, heard = self._prepared(message, history, settings, _schema(json_schema))
        with self.frames.hold() as folder:
            media = media_shown(message_files(message), chat.messages[-1].media(), folder)
        text = [{"role": "user", "content": message["text"]}] if message.get("text") else []
        asked = [*shown[:-1], *({"role": "user", "content": m} for m in media), *text]
        turn = user_turn(message)
        for answer, gallery, seen_text in self._answer(name, chat, generation, heard):
            reply = [{"role": "assistant", "content": answer}] if answer else []
            yield [*asked, *reply], [*history, turn, *reply], gallery, seen_text

    def _prepared(
        self, message: dict, history: History, settings: Settings, schema: JsonSchema | None = None
    ) -> tuple[str, Chat, GenerationOptions, str]:
        """The model's name, the chat to answer (`message` after `history`, answered in JSON following
        `schema` where given), how to generate, and what its videos say where the settings listen."""
        sampling, generation = settings.options()
        _, sampling = load_fitted(self._model_options(settings), sampling, self.models.get)
        messages = to_messages(history, message, sampling, self.allowed, system=settings.system or None)
        heard = ""
        if settings.listen:
            messages, heard = self._heard(settings.model, messages)
        return settings.model, asking(messages, schema), generation, heard

    def _heard(self, name: str, messages: list[Message]) -> tuple[list[Message], str]:
        """The messages with what each one's videos say before its question, and a line on each video.

        A follow-up turn hears its chat's earlier videos too, from the transcripts kept of them.
        """
        rows = [[m for m in message.media() if isinstance(m, SampledVideo)] for message in messages]
        videos = [video for row in rows for video in row]
        if not videos:
            return messages, ""
        speech = self.config.speech_options(True)
        spans = [(v.info.path, v.window.start, v.window.end) for v in videos]
        found = self.transcripts.heard(speech, spans, lambda missing: self._listen(name, speech, missing))
        said = [t.text_between(start, end) for (_, start, end), t in zip(spans, found, strict=True)]
        heard, spoken = [], iter(said)
        for message, row in zip(messages, rows, strict=True):
            text = " ".join(filter(None, itertools.islice(spoken, len(row))))
            heard.append(replace(message, content=tuple(with_speech(message.content, text))))
        return heard, "\n\n".join(map(heard_line, videos, found, said))

    def _chat(
        self, message: dict, history: History, settings: Settings, schema: JsonSchema | None = None
    ) -> Iterator[tuple[str, Any, Any]]:
        """Answer `message` after `history`, in JSON following `schema` where given."""
        yield from self._answer(*self._prepared(message, history, settings, schema))

    def _answer(
        self, name: str, chat: Chat, generation: GenerationOptions, heard: str = ""
    ) -> Iterator[tuple[str, Gallery, str]]:
        media = chat_media(chat.messages)
        cache = self.models.get(self.config.model_options(name)).features
        with self.frames.hold() as folder:  # held, so no other request prunes it, until the answer ends
            gallery, seen_text = save_frames(folder, media), describe_media(media, cache)
            seen_text = "\n\n".join(filter(None, [seen_text, heard]))
            yield "", gallery, seen_text  # the frames show before the answer starts
            answer = ""
            for piece in self._stream(name, chat, generation):
                answer += piece
                yield answer.lstrip(), gr.skip(), gr.skip()  # the frames are sent once, not with every token
            parse_answer(answer, chat.schema, generation.max_new_tokens)  # a cut-off JSON answer is an error
            yield answer.strip(), gallery, seen_text  # the final result carries everything, for API callers

    def _stream_answer(self, name: str, chat: Chat, generation: GenerationOptions) -> Iterator[str]:
        """The model's answer piece by piece; closing this generator stops generation."""
        from smolvlm_video.model.generate import stream

        # Closing this generator closes stream() through yield from, which stops and joins its thread.
        yield from stream(self.models.get(self.config.model_options(name)), chat, generation)


def heard_line(video: SampledVideo, transcript: Transcript, said: str) -> str:
    """A line on what a video's window says, beside the frames the model saw."""
    span = f"{clock(video.window.start)} to {clock(video.window.end)}"
    if transcript.error:
        return f"Its sound could not be read ({transcript.error['message']}): the model heard nothing."
    if not said:
        return f"Nothing is said from {span}."
    return f"Said from {span}: \u201c{said}\u201d"


def _schema(text: str | None) -> JsonSchema | None:
    """The JSON schema typed into a box, or None for an empty box."""
    return JsonSchema(text, "The JSON schema") if text and text.strip() else None


@contextlib.contextmanager
def _as_gr_error() -> Iterator[None]:
    """The core's errors as gr.Error; a file is named by its name alone, not by its path on the server."""
    try:
        yield
    except SmolVLMVideoError as error:
        message = f"{Path(error.path).name}: {error.cause}" if isinstance(error, FileError) else str(error)
        raise gr.Error(message, title="Cannot do that") from error
