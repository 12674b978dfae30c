"""The HTTP server: OpenAI's chat-completions API over one loaded model, on FastAPI.

Media are read on worker threads, never on the event loop, so `/health` and new requests are answered while
a long video decodes. The model answers one request at a time, on a thread of its own. Errors come back as
OpenAI's error object with their HTTP status; a bug of ours is a 500 whose body says nothing of the server.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from ..errors import GenerationError, OutOfMemoryError, PromptTooLongError
from ..model.generate import StreamUsage, answer_chats, stream
from ..model.loading import LoadedModel
from ..model.prompts import Chat, Message
from ..model.schemas import Question
from ..options import SamplingOptions
from .media import load_part
from .protocol import APIError, ChatRequest, Turn, bad, parse_request, sse

logger = logging.getLogger(__name__)

MB = 1 << 20


@dataclass(frozen=True)
class ServerOptions:
    """What the server serves and allows."""

    api_key: str | None = None  # clients send it as a Bearer token; None: no key asked
    allowed_media_paths: tuple[Path, ...] = ()  # folders whose files requests may name; none by default
    max_body_mb: int = 200  # the largest request body (base64 media inflate it by a third)
    max_media_mb: int = 100  # the largest medium, once decoded from base64
    max_new_tokens: int = 1024  # the most tokens an answer may take (a request's max_tokens is capped by it)
    sampling: SamplingOptions = field(default_factory=SamplingOptions)  # videos' defaults, as `ask` has them
    model_names: tuple[str, ...] = ()  # other names the model answers to (the --model given, e.g. "256M")


def create_app(model: LoadedModel, options: ServerOptions) -> FastAPI:
    """The app serving `model`: /v1/models, /v1/chat/completions, /health."""
    app = FastAPI(title="smolvlm-video", docs_url=None, redoc_url=None)
    worker = ThreadPoolExecutor(1, thread_name_prefix="smolvlm-model")  # the model answers one at a time
    names = {model.model_id, *options.model_names}

    @app.exception_handler(APIError)
    async def api_error(request: Request, error: APIError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(Exception)
    async def server_error(request: Request, error: Exception) -> JSONResponse:
        logger.exception("request failed")
        return JSONResponse(APIError(500, "The server failed on this request.").body(), status_code=500)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        _check_key(request, options.api_key)
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "smolvlm-video"}
            for name in sorted(names)
        ]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", response_model=None)
    async def completions(request: Request) -> JSONResponse | StreamingResponse:
        _check_key(request, options.api_key)
        chat_request = parse_request(await _body(request, options.max_body_mb * MB), options.sampling,
                                     options.max_new_tokens)  # fmt: skip
        if chat_request.model not in names:
            raise APIError(404, f"The model {chat_request.model!r} is not served here; see GET /v1/models.",
                           "model", "model_not_found")  # fmt: skip
        chat = await asyncio.to_thread(_chat, chat_request, options)
        if chat_request.stream:
            return StreamingResponse(_streamed(model, worker, chat, chat_request, request),
                                     media_type="text/event-stream")  # fmt: skip
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(worker, _answer, model, chat, chat_request)
        return JSONResponse(answer)

    app.state.worker = worker
    return app


def _check_key(request: Request, key: str | None) -> None:
    if key is None:
        return
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), key.encode()):
        raise APIError(401, "A missing or wrong API key: send it as 'Authorization: Bearer <key>'.",
                       code="invalid_api_key")  # fmt: skip


async def _body(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise APIError(413, f"The request body is over the server's limit of {limit >> 20} MB.")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise APIError(413, f"The request body is over the server's limit of {limit >> 20} MB.")
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise bad(f"The body is not JSON ({error}).") from error


def _chat(request: ChatRequest, options: ServerOptions) -> Chat:
    """The request's messages with their media read (on a worker thread), and its schema."""
    limit = options.max_media_mb * MB
    messages = [_message(turn, request, options.allowed_media_paths, limit) for turn in request.turns]
    last = messages[-1]
    if request.schema is not None:  # the schema is stated after the last question, as `chat` does
        *media, text = last.content if isinstance(last.content[-1], str) else (*last.content, "")
        messages[-1] = Message.user(*media, Question(text, request.schema).prompt())
    return Chat(tuple(messages), request.schema)


def _message(turn: Turn, request: ChatRequest, allowed: Sequence[Path], limit: int) -> Message:
    if turn.role != "user":
        text = "\n".join(part.text or "" for part in turn.parts)
        return Message.system(text) if turn.role == "system" else Message.assistant(text)
    parts = [part.text if part.kind is None else load_part(part, request.sampling, allowed, limit)
             for part in turn.parts]  # fmt: skip
    return Message.user(*parts)  # type: ignore[arg-type]


def _answer(model: LoadedModel, chat: Chat, request: ChatRequest) -> dict[str, Any]:
    """The chat.completion object for a request answered whole."""
    try:
        (answer,) = answer_chats(model, [chat], request.generation)
    except GenerationError as error:
        raise _generation_error(error) from error
    text, stopped = _cut_at_stop(answer.text, request.stop)
    finish = "stop" if stopped or answer.completion_tokens < request.generation.max_new_tokens else "length"
    usage = {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
             "total_tokens": answer.prompt_tokens + answer.completion_tokens}  # fmt: skip
    return {
        **_envelope("chat.completion", request),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        "usage": usage,
    }


def _envelope(kind: str, request: ChatRequest, ident: str | None = None) -> dict[str, Any]:
    return {"id": ident or f"chatcmpl-{uuid.uuid4().hex}", "object": kind, "created": int(time.time()),
            "model": request.model}  # fmt: skip


def _cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    cuts = [text.index(stop) for stop in stops if stop in text]
    return (text[: min(cuts)], True) if cuts else (text, False)


def _generation_error(error: GenerationError) -> APIError:
    if isinstance(error, PromptTooLongError):
        return bad(str(error), "messages", "context_length_exceeded")
    if isinstance(error, OutOfMemoryError):
        return APIError(503, "The server ran out of memory on this request; send fewer frames.")
    return APIError(500, "The model failed on this request.")


async def _streamed(
    model: LoadedModel, worker: ThreadPoolExecutor, chat: Chat, request: ChatRequest, http: Request
) -> AsyncIterator[str]:
    """Server-Sent Events: a chunk per piece of the answer, the finish, usage if asked, then [DONE]."""
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue[Any] = asyncio.Queue()
    cancel, usage = threading.Event(), StreamUsage()
    done = object()

    def run() -> None:
        try:
            for piece in stream(model, chat, request.generation, cancel=cancel, usage=usage):
                loop.call_soon_threadsafe(pieces.put_nowait, piece)
            loop.call_soon_threadsafe(pieces.put_nowait, done)
        except BaseException as error:  # handed to the event loop, which ends the stream with it
            loop.call_soon_threadsafe(pieces.put_nowait, error)

    ident = f"chatcmpl-{uuid.uuid4().hex}"

    def chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {**_envelope("chat.completion.chunk", request, ident), "choices": [choice]}

    future = loop.run_in_executor(worker, run)
    text, stopped = "", False
    try:
        yield sse(chunk({"role": "assistant", "content": ""}))
        while (item := await pieces.get()) is not done:
            if isinstance(item, BaseException):
                yield sse(_stream_error(item).body())
                return
            if await http.is_disconnected():
                return
            new, stopped = _cut_at_stop(text + item, request.stop)
            if new[len(text) :]:
                yield sse(chunk({"content": new[len(text) :]}))
            text = new
            if stopped:
                cancel.set()
                break
        finish = (
            "stop" if stopped or usage.completion_tokens < request.generation.max_new_tokens else "length"
        )
        yield sse(chunk({}, finish))
        if request.include_usage:
            total = usage.prompt_tokens + usage.completion_tokens
            counts = {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                      "total_tokens": total}  # fmt: skip
            yield sse({**_envelope("chat.completion.chunk", request, ident), "choices": [], "usage": counts})
        yield "data: [DONE]\n\n"
    finally:
        cancel.set()  # a client gone, or the stream cut at a stop string: generation ends at the next token
        await future


def _stream_error(error: BaseException) -> APIError:
    if isinstance(error, GenerationError):
        return _generation_error(error)
    logger.error("streaming failed", exc_info=error)
    return APIError(500, "The server failed on this request.")
