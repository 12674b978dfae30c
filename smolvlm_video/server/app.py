"""The HTTP server: OpenAI's chat-completions API over one loaded model, on FastAPI.

Media are read on worker threads, never on the event loop, so `/health` and new requests are answered while
a long video decodes. The model answers one request at a time, on a thread of its own. Errors come back as
OpenAI's error object with their HTTP status; a bug of ours is a 500 whose body says nothing of the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from ..errors import GenerationError, OutOfMemoryError, PromptTooLongError
from ..model.generate import Answer
from ..model.loading import LoadedModel
from ..model.prompts import Chat, Message
from ..model.schemas import Question
from .batching import Batcher, Job, Metrics, QueueFull
from .media import load_part
from .options import ServerOptions
from .protocol import APIError, ChatRequest, Turn, bad, parse_request, sse

logger = logging.getLogger(__name__)

MB = 1 << 20


def create_app(model: LoadedModel, options: ServerOptions) -> FastAPI:
    """The app serving `model`: /v1/models, /v1/chat/completions, /health, /metrics."""
    metrics = Metrics()
    batcher = Batcher(model, metrics, options.max_batch, options.max_queue)
    names = {model.model_id, *options.model_names}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(batcher.close)  # the batch under way is finished first

    app = FastAPI(title="smolvlm-video", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.batcher, app.state.metrics = batcher, metrics

    @app.middleware("http")
    async def count(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        if request.url.path == "/v1/chat/completions":
            with metrics.lock:
                metrics.requests[response.status_code] += 1
        return response

    @app.exception_handler(APIError)
    async def api_error(request: Request, error: APIError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    @app.exception_handler(Exception)
    async def server_error(request: Request, error: Exception) -> JSONResponse:
        logger.exception("request failed")
        return JSONResponse(APIError(500, "The server failed on this request.").body(), status_code=500)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus(request: Request) -> str:
        _check_key(request, options.api_key)
        return metrics.text()

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
        body = await _body(request, options.max_body_mb * MB)
        chat_request = parse_request(body, options.sampling, options.max_new_tokens)
        if chat_request.model not in names:
            raise APIError(404, f"The model {chat_request.model!r} is not served here; see GET /v1/models.",
                           "model", "model_not_found")  # fmt: skip
        with batcher.arriving():  # a batch being gathered waits for this request's media
            started = time.perf_counter()
            chat = await asyncio.to_thread(
                _chat, chat_request, options
            )  # off the loop: /health still answers
            with metrics.lock:
                metrics.decode_seconds += time.perf_counter() - started
            loop = asyncio.get_running_loop()
            pieces: asyncio.Queue[str | None] = asyncio.Queue()
            job = Job(chat, chat_request.generation)
            if chat_request.stream:
                job.on_piece = lambda piece: loop.call_soon_threadsafe(pieces.put_nowait, piece)
                job.answer.add_done_callback(lambda _: loop.call_soon_threadsafe(pieces.put_nowait, None))
            _submit(batcher, job)
        if chat_request.stream:
            return StreamingResponse(_streamed(job, pieces, chat_request), media_type="text/event-stream")
        try:
            answer = await asyncio.wrap_future(job.answer)
        except GenerationError as error:
            raise _generation_error(error) from error
        finally:
            job.cancelled.set()  # a client gone before its answer: its row stops
        return JSONResponse(_completion(answer, chat_request))

    return app


def _submit(batcher: Batcher, job: Job) -> None:
    try:
        batcher.submit(job)
    except QueueFull as error:
        raise APIError(429, "The server's queue is full; retry in a moment.", code="queue_full",
                       headers={"Retry-After": "1"}) from error  # fmt: skip


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
    messages = [_message(turn, request, options, limit) for turn in request.turns]
    last = messages[-1]
    if request.schema is not None:  # the schema is stated after the last question, as `chat` does
        *media, text = last.content if isinstance(last.content[-1], str) else (*last.content, "")
        messages[-1] = Message.user(*media, Question(text, request.schema).prompt())
    return Chat(tuple(messages), request.schema)


def _message(turn: Turn, request: ChatRequest, options: ServerOptions, limit: int) -> Message:
    if turn.role != "user":
        text = "\n".join(part.text or "" for part in turn.parts)
        return Message.system(text) if turn.role == "system" else Message.assistant(text)
    parts = [
        part.text
        if part.kind is None
        else load_part(part, request.sampling, options.allowed_media_paths, limit, options.fetch_seconds)
        for part in turn.parts
    ]
    return Message.user(*parts)  # type: ignore[arg-type]


def _completion(answer: Answer, request: ChatRequest) -> dict[str, Any]:
    """The chat.completion object of an answer."""
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


async def _streamed(job: Job, pieces: asyncio.Queue[str | None], request: ChatRequest) -> AsyncIterator[str]:
    """Server-Sent Events: a chunk per piece of the answer, the finish, usage if asked, then [DONE]."""
    ident = f"chatcmpl-{uuid.uuid4().hex}"

    def chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {**_envelope("chat.completion.chunk", request, ident), "choices": [choice]}

    text, stopped = "", False
    try:
        yield sse(chunk({"role": "assistant", "content": ""}))
        while (piece := await pieces.get()) is not None:
            new, stopped = _cut_at_stop(text + piece, request.stop)
            if new[len(text) :]:
                yield sse(chunk({"content": new[len(text) :]}))
            text = new
            if stopped:
                job.cancelled.set()
                break
        try:
            answer = await asyncio.wrap_future(job.answer)
        except Exception as error:
            yield sse(_stream_error(error).body())
            return
        finish = (
            "stop" if stopped or answer.completion_tokens < request.generation.max_new_tokens else "length"
        )
        yield sse(chunk({}, finish))
        if request.include_usage:
            counts = _completion(answer, request)["usage"]
            yield sse({**_envelope("chat.completion.chunk", request, ident), "choices": [], "usage": counts})
        yield "data: [DONE]\n\n"
    finally:
        job.cancelled.set()  # a client gone, or the stream cut at a stop: its row stops at the next token


def _stream_error(error: BaseException) -> APIError:
    if isinstance(error, GenerationError):
        return _generation_error(error)
    logger.error("streaming failed", exc_info=error)
    return APIError(500, "The server failed on this request.")
