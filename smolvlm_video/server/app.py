"""The HTTP server: OpenAI's chat-completions API over one loaded model, on FastAPI.

Media are read on worker threads, never on the event loop, so `/health` and new requests are answered while
a long video decodes. The model answers one request at a time, on a thread of its own. Errors come back as
OpenAI's error object with their HTTP status; a bug of ours is a 500 whose body says nothing of the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import GenerationError, OutOfMemoryError, PromptTooLongError
from ..model.generate import Answer
from ..model.loading import LoadedModel
from ..model.prompts import Chat, Message, asking
from ..speech import with_speech
from ..video import SampledVideo
from ..video.media import Media
from .batching import Batcher, Job, Metrics, QueueFull
from .listening import Listener
from .media import Listen, load_part
from .options import ServerOptions
from .protocol import APIError, ChatRequest, Turn, bad, parse_request, sse

logger = logging.getLogger(__name__)

MB = 1 << 20
DISCONNECT_POLL_SECONDS = 0.25  # how often a whole answer's wait looks for its client having gone


def create_app(model: LoadedModel, options: ServerOptions) -> FastAPI:
    """The app serving `model`: /v1/models, /v1/chat/completions, /health, /metrics."""
    metrics = Metrics()
    batcher = Batcher(model, metrics, options.max_batch, options.max_queue)
    listener = Listener(model, options.speech)
    names = {model.model_id, *options.model_names}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # What was made before serving (the model, transformers, torch: some 400,000 objects) lives as long
        # as the server: the garbage collector leaves it out of its full passes, which otherwise held the GIL,
        # and /health with it, for 0.25 s when a large request followed a busy spell.
        gc.freeze()
        yield
        await asyncio.to_thread(batcher.close)  # the batch under way is finished first

    app = FastAPI(title="smolvlm-video", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.batcher, app.state.metrics = batcher, metrics
    _errors_in_openai_shape(app)
    keyed = APIRouter(dependencies=[Depends(_key_check(options.api_key))])

    @app.middleware("http")
    async def count(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        if request.url.path == "/v1/chat/completions":
            with metrics.lock:
                metrics.requests[response.status_code] += 1
        return response

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @keyed.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> str:
        return metrics.text()

    @keyed.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [_model(name) for name in sorted(names)]}

    @keyed.get("/v1/models/{name:path}")
    async def one_model(name: str) -> dict[str, Any]:
        if name not in names:
            raise APIError(404, f"The model {name!r} is not served here; see GET /v1/models.", "model",
                           "model_not_found")  # fmt: skip
        return _model(name)

    @keyed.post("/v1/chat/completions", response_model=None)
    async def completions(request: Request) -> JSONResponse | StreamingResponse:
        body = await _body(request, options.max_body_mb * MB)
        # Off the loop, as everything slow here: /health still answers while a large schema is checked.
        chat_request = await asyncio.to_thread(
            parse_request, body, options.sampling, options.max_new_tokens, options.speech.mode
        )
        if chat_request.model not in names:
            raise APIError(404, f"The model {chat_request.model!r} is not served here; see GET /v1/models.",
                           "model", "model_not_found")  # fmt: skip
        job = await _submitted(batcher, metrics, chat_request, options, listener)
        if chat_request.stream:
            await _admitted(job)  # a request that cannot be answered is a plain error, never a 200
            headers = {"Cache-Control": "no-cache"}
            stream = _streamed(job, chat_request)
            return StreamingResponse(stream, media_type="text/event-stream", headers=headers)
        return JSONResponse(_completion(await _answered(job, request), chat_request))

    app.include_router(keyed)
    return app


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "smolvlm-video"}


def _errors_in_openai_shape(app: FastAPI) -> None:
    """Every error in OpenAI's shape: ours, FastAPI's own 404 and 405, its 422 as a 400, and a bug as 500."""

    @app.exception_handler(APIError)
    async def api_error(request: Request, error: APIError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = {404: "No such route.", 405: "That method is not allowed on this route."}.get(
            error.status_code, str(error.detail)
        )
        return JSONResponse(APIError(error.status_code, message).body(), status_code=error.status_code,
                            headers=getattr(error, "headers", None))  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(bad("The request is not valid.").body(), status_code=400)

    @app.exception_handler(Exception)
    async def server_error(request: Request, error: Exception) -> JSONResponse:
        logger.exception("request failed")
        return JSONResponse(APIError(500, "The server failed on this request.").body(), status_code=500)


def _key_check(key: str | None) -> Callable[[Request], None]:
    """The dependency that checks the API key, on every route but /health."""

    def check(request: Request) -> None:
        if key is None:
            return
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), key.encode()):
            raise APIError(401, "A missing or wrong API key: send it as 'Authorization: Bearer <key>'.",
                           code="invalid_api_key")  # fmt: skip

    return check


async def _submitted(
    batcher: Batcher, metrics: Metrics, request: ChatRequest, options: ServerOptions, listener: Listener
) -> Job:
    """The request's job, queued: its place is taken before its media are read (429 where there is none)."""
    try:
        with batcher.arriving():  # a batch being gathered waits for this request's media
            started = time.perf_counter()
            chat = await asyncio.to_thread(_chat, request, options, listener)  # off the loop: /health answers
            with metrics.lock:
                metrics.decode_seconds += time.perf_counter() - started
            job = Job(chat, request.generation, request.stop, request.seed)
            if request.stream:
                loop = asyncio.get_running_loop()
                job.pieces = asyncio.Queue()
                job.on_piece = lambda piece: loop.call_soon_threadsafe(job.pieces.put_nowait, piece)
                job.answer.add_done_callback(lambda _: loop.call_soon_threadsafe(job.pieces.put_nowait, None))
            batcher.submit(job)
    except QueueFull as error:
        raise APIError(429, "The server's queue is full; retry in a moment.", code="queue_full",
                       headers={"Retry-After": "1"}) from error  # fmt: skip
    return job


async def _admitted(job: Job) -> None:
    """Wait until the job's batch fits and generates, or raise the APIError of its failure before that."""
    admitted, answer = asyncio.wrap_future(job.admitted), asyncio.wrap_future(job.answer)
    await asyncio.wait({admitted, answer}, return_when=asyncio.FIRST_COMPLETED)
    if admitted.done():
        return
    admitted.cancel()
    try:
        answer.result()
    except GenerationError as error:
        raise _generation_error(error) from error


async def _answered(job: Job, request: Request) -> Answer:
    """The job's answer; a client that disconnects first cancels its row, as a streaming one does."""
    answer = asyncio.wrap_future(job.answer)
    try:
        while not job.cancelled.is_set():
            done, _ = await asyncio.wait({answer}, timeout=DISCONNECT_POLL_SECONDS)
            if done:
                break
            if await request.is_disconnected():
                job.cancelled.set()  # its row stops at the next token
        return await answer
    except GenerationError as error:
        raise _generation_error(error) from error
    finally:
        job.cancelled.set()


async def _body(request: Request, limit: int) -> bytes:
    """The request's body, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise APIError(413, f"The request body is over the server's limit of {limit >> 20} MB.")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise APIError(413, f"The request body is over the server's limit of {limit >> 20} MB.")
    return bytes(data)


def _chat(request: ChatRequest, options: ServerOptions, listener: Listener) -> Chat:
    """The request's messages with their media read (on a worker thread), and its schema."""
    listen = listener.transcribe if request.speech == "prompt" else None
    return asking([_message(turn, request, options, listen) for turn in request.turns], request.schema)


def _message(turn: Turn, request: ChatRequest, options: ServerOptions, listen: Listen | None) -> Message:
    if turn.role != "user":
        text = "\n".join(part.text or "" for part in turn.parts)
        return Message.system(text) if turn.role == "system" else Message.assistant(text)
    parts: list[str | Media] = []
    said = []
    for part in turn.parts:
        if part.kind is None:
            parts.append(part.text or "")
            continue
        medium, transcript = load_part(part, request.sampling, options, listen)
        parts.append(medium)
        if transcript is not None and isinstance(medium, SampledVideo):
            said.append(transcript.text_between(medium.window.start, medium.window.end))
    return Message.user(*with_speech(parts, " ".join(filter(None, said))))


def _finish(answer: Answer, request: ChatRequest) -> str:
    """OpenAI's finish reason: "length" where max_tokens ended the answer, else "stop" (its end, or a stop
    string)."""
    return "stop" if answer.completion_tokens < request.generation.max_new_tokens else "length"


def _completion(answer: Answer, request: ChatRequest) -> dict[str, Any]:
    """The chat.completion object of an answer (whose text ends before a stop string)."""
    usage = {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
             "total_tokens": answer.prompt_tokens + answer.completion_tokens}  # fmt: skip
    return {
        **_envelope("chat.completion", request),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text},
                "finish_reason": _finish(answer, request),
            }
        ],
        "usage": usage,
    }


def _envelope(kind: str, request: ChatRequest, ident: str | None = None) -> dict[str, Any]:
    return {"id": ident or f"chatcmpl-{uuid.uuid4().hex}", "object": kind, "created": int(time.time()),
            "model": request.model}  # fmt: skip


def _generation_error(error: GenerationError) -> APIError:
    if isinstance(error, PromptTooLongError):
        return bad(str(error), "messages", "context_length_exceeded")
    if isinstance(error, OutOfMemoryError):
        return APIError(503, "The server ran out of memory on this request; send fewer frames.")
    return APIError(500, "The model failed on this request.")


async def _streamed(job: Job, request: ChatRequest) -> AsyncIterator[str]:
    """Server-Sent Events: a chunk per piece of the answer, the finish, usage if asked, then [DONE].

    The pieces never hold part of a stop string (the core holds such an end back). A failure after the
    stream has begun is an error event, then [DONE].
    """
    ident = f"chatcmpl-{uuid.uuid4().hex}"

    def chunk(delta: dict[str, str], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {**_envelope("chat.completion.chunk", request, ident), "choices": [choice]}

    assert job.pieces is not None
    try:
        yield sse(chunk({"role": "assistant", "content": ""}))
        while (piece := await job.pieces.get()) is not None:
            yield sse(chunk({"content": piece}))
        try:
            answer = await asyncio.wrap_future(job.answer)
        except Exception as error:
            yield sse(_stream_error(error).body())
            yield "data: [DONE]\n\n"
            return
        yield sse(chunk({}, _finish(answer, request)))
        if request.include_usage:
            counts = _completion(answer, request)["usage"]
            yield sse({**_envelope("chat.completion.chunk", request, ident), "choices": [], "usage": counts})
        yield "data: [DONE]\n\n"
    finally:
        job.cancelled.set()  # a client gone: its row stops at the next token


def _stream_error(error: BaseException) -> APIError:
    if isinstance(error, GenerationError):
        return _generation_error(error)
    logger.error("streaming failed", exc_info=error)
    return APIError(500, "The server failed on this request.")
