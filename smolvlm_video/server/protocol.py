"""OpenAI's chat-completions request, read into typed objects; and its error object.

A request is checked whole before any medium is read: a field the server does not take is refused by name
(HTTP 400), so a client never gets an answer made with settings it did not ask for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import OptionsError
from ..model.schemas import JsonSchema
from ..options import GenerationOptions, SamplingOptions

# Fields of a chat-completions request the server takes; `fps` ... `split` are its own, for videos.
TAKEN = {
    "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature",
    "top_p", "stop", "n", "response_format", "fps", "max_frames", "start", "end", "split",
}  # fmt: skip
SAMPLING_FIELDS = ("fps", "max_frames", "start", "end", "split")
MEDIA_PARTS = ("image_url", "video_url", "input_video")
JSON_OBJECT = JsonSchema.from_value(
    {"type": "object", "additionalProperties": True}, "response_format json_object"
)


class APIError(Exception):
    """An error as OpenAI's API gives it: an HTTP status and `{"error": {message, type, param, code}}`."""

    TYPES: ClassVar[dict[int, str]] = {
        400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
        413: "invalid_request_error", 429: "rate_limit_error", 500: "server_error", 503: "server_error",
    }  # fmt: skip

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers

    def body(self) -> dict[str, Any]:
        kind = self.TYPES.get(self.status, "invalid_request_error")
        return {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}


def bad(message: str, param: str | None = None, code: str = "invalid_value") -> APIError:
    return APIError(400, message, param, code)


@dataclass(frozen=True)
class Part:
    """One part of a message: text, or a medium (`kind` image or video) given by `url` or base64 `data`."""

    where: str  # e.g. "messages[1].content[0]": how errors name it
    text: str | None = None
    kind: str | None = None  # "image" or "video"
    url: str | None = None


@dataclass(frozen=True)
class Turn:
    role: str  # system, user or assistant
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class ChatRequest:
    """A chat-completions request, checked."""

    model: str
    turns: tuple[Turn, ...]
    generation: GenerationOptions
    sampling: SamplingOptions
    schema: JsonSchema | None = None
    stream: bool = False
    include_usage: bool = False
    stop: tuple[str, ...] = field(default_factory=tuple)


def parse_request(body: Any, sampling: SamplingOptions, max_new_tokens: int) -> ChatRequest:
    """The request in `body` (parsed JSON), with `sampling` as its videos' defaults; APIError 400 if bad."""
    if not isinstance(body, dict):
        raise bad("The body must be a JSON object.")
    if unknown := sorted(set(body) - TAKEN):
        raise bad(f"Unsupported parameter(s): {', '.join(unknown)}.", unknown[0], "unsupported_parameter")
    if not isinstance(body.get("model"), str):
        raise bad("`model` is required: a model id from GET /v1/models.", "model")
    if body.get("n", 1) != 1:
        raise bad("Only n=1 is supported.", "n", "unsupported_value")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("`messages` must be a non-empty list.", "messages")
    turns = tuple(_turn(message, f"messages[{index}]") for index, message in enumerate(messages))
    if turns[-1].role != "user":
        raise bad("The last message must be the user's.", f"messages[{len(turns) - 1}].role")
    stream_options = body.get("stream_options") or {}
    return ChatRequest(
        model=body["model"],
        turns=turns,
        generation=_generation(body, max_new_tokens),
        sampling=_sampling(body, sampling),
        schema=_schema(body.get("response_format")),
        stream=bool(body.get("stream", False)),
        include_usage=bool(isinstance(stream_options, dict) and stream_options.get("include_usage")),
        stop=_stop(body.get("stop")),
    )


def _turn(message: Any, where: str) -> Turn:
    if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
        raise bad("Each message needs a role: system, user or assistant.", f"{where}.role")
    content = message.get("content")
    if isinstance(content, str):
        return Turn(message["role"], (Part(f"{where}.content", text=content),))
    if not isinstance(content, list) or not content:
        raise bad("`content` must be a string or a non-empty list of parts.", f"{where}.content")
    parts = tuple(_part(part, f"{where}.content[{index}]") for index, part in enumerate(content))
    if message["role"] != "user" and any(part.kind for part in parts):
        raise bad("Only user messages may hold images and videos.", f"{where}.content")
    return Turn(message["role"], parts)


def _part(part: Any, where: str) -> Part:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text" and isinstance(part.get("text"), str):
        return Part(where, text=part["text"])
    if kind in ("image_url", "video_url"):
        value = part.get(kind)
        url = value.get("url") if isinstance(value, dict) else value
        if isinstance(url, str) and url:
            return Part(where, kind=kind.removesuffix("_url"), url=url)
        raise bad(f"A {kind} part needs {{'{kind}': {{'url': ...}}}}.", where)
    if kind == "input_video":  # llama.cpp's part: base64, as a string or {"data": ...}
        value = part.get("input_video")
        data = value.get("data") if isinstance(value, dict) else value
        if isinstance(data, str) and data:
            return Part(where, kind="video", url=f"data:video/mp4;base64,{data}")
        raise bad("An input_video part needs its base64 data.", where)
    raise bad(f"Unsupported content part; use text, {', '.join(MEDIA_PARTS)}.", where)


def _generation(body: dict[str, Any], limit: int) -> GenerationOptions:
    tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    tokens = limit if tokens is None else tokens
    if not isinstance(tokens, int) or isinstance(tokens, bool) or not 1 <= tokens <= limit:
        raise bad(f"max_tokens must be an integer from 1 to {limit} (this server's limit).", "max_tokens")
    temperature = body.get("temperature")
    top_p = body.get("top_p")
    sample = bool(temperature) or top_p not in (None, 1, 1.0)  # temperature 0 or none: greedy, as OpenAI's
    try:
        return GenerationOptions(
            max_new_tokens=tokens,
            do_sample=sample,
            temperature=float(temperature) if sample and temperature else GenerationOptions.temperature,
            top_p=float(top_p) if top_p is not None else GenerationOptions.top_p,
        )
    except (OptionsError, TypeError, ValueError) as error:
        raise bad(str(error), getattr(error, "option", None)) from error


def _sampling(body: dict[str, Any], defaults: SamplingOptions) -> SamplingOptions:
    asked = {name: body[name] for name in SAMPLING_FIELDS if name in body}
    frames = asked.get("max_frames", defaults.max_frames)
    if not isinstance(frames, int) or isinstance(frames, bool) or frames > defaults.max_frames:
        limit = defaults.max_frames
        raise bad(
            f"max_frames must be an integer of at most {limit} (this server's --max-frames).", "max_frames"
        )
    try:
        return SamplingOptions(**{**defaults.to_dict(), **asked})
    except (OptionsError, TypeError) as error:
        raise bad(f"Video sampling: {error}", getattr(error, "option", None)) from error


def _schema(response_format: Any) -> JsonSchema | None:
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return JSON_OBJECT
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        try:
            return JsonSchema.from_value(schema, "response_format.json_schema.schema")
        except OptionsError as error:
            raise bad(str(error), "response_format") from error
    raise bad("response_format must be text, json_object or json_schema.", "response_format")


def _stop(stop: Any) -> tuple[str, ...]:
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops) or len(stops) > 4:
        raise bad("stop must be a string or a list of up to 4 strings.", "stop")
    return tuple(stops)


def sse(data: Any) -> str:
    """One Server-Sent Event carrying `data` as JSON."""
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"
