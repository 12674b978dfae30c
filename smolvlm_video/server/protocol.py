"""OpenAI's chat-completions request, validated by pydantic at the HTTP edge; and its error object.

The request models are strict (`"stream": "no"`, `"n": true` and `"temperature": "0.5"` are refused), forbid
fields they do not know, refuse NaN and infinity, and read the body's bytes directly (`model_validate_json`,
whose parser refuses JSON nested past 200 levels). Every field of OpenAI's `CompletionCreateParams` is
known: the server's own ones work; caching and attribution hints (`user`, `metadata`, ...) are accepted and
ignored; any other is accepted at its default value (`frequency_penalty: 0`, `tools: []`, ...) and refused
by name otherwise. So stock clients and frameworks that send OpenAI's defaults work, and no answer is made
with a setting the client asked for and did not get.

A valid request becomes the frozen `ChatRequest` the app and the batcher take. Any failure is an `APIError`:
HTTP 400 in OpenAI's shape, with `param` naming the field ("messages[1].content[0]").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import OptionsError
from ..model.schemas import JsonSchema
from ..options import GenerationOptions, SamplingOptions

MAX_SCHEMA_DEPTH = 32  # levels of nesting a response_format schema may have; deeper ones are refused
# Values (objects, lists, strings, numbers) a response_format schema may hold: counted before the schema is
# serialised or checked, so a schema of a megabyte costs its parse and no more (JsonSchema bounds the rest).
MAX_SCHEMA_VALUES = 20_000
JSON_OBJECT = JsonSchema.from_value(
    {"type": "object", "additionalProperties": True}, "response_format json_object"
)

# Fields of OpenAI's request that change nothing here (attribution, caching hints): accepted, ignored.
IGNORED = ("user", "metadata", "safety_identifier", "prompt_cache_key", "prompt_cache_retention",
           "prompt_cache_options")  # fmt: skip
# Fields this server does not implement: accepted at OpenAI's default (or null), refused otherwise.
DEFAULTS: dict[str, tuple[Any, ...]] = {
    "frequency_penalty": (0,), "presence_penalty": (0,), "logprobs": (False,), "top_logprobs": (0,),
    "logit_bias": ({},), "tools": ([],), "tool_choice": ("none", "auto"), "functions": ([],),
    "function_call": ("none", "auto"), "parallel_tool_calls": (True,), "modalities": (["text"],),
    "audio": (), "prediction": (), "reasoning_effort": (), "web_search_options": (), "moderation": (),
    "store": (False,), "service_tier": ("auto", "default"), "verbosity": ("medium",), "n": (1,),
}  # fmt: skip


class APIError(Exception):
    """An error as OpenAI's API gives it: an HTTP status and `{"error": {message, type, param, code}}`."""

    TYPES: ClassVar[dict[int, str]] = {
        400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
        405: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error",
        500: "server_error", 503: "server_error",
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


# --- the request as it arrives ---

STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class MediaUrl(BaseModel):
    model_config = STRICT
    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None  # OpenAI's image detail: every image is seen whole


class VideoData(BaseModel):
    model_config = STRICT
    data: str = Field(min_length=1)


class ContentPart(BaseModel):
    """A part of a message: text, an image or video URL (a data: URI, a path, http(s)), or base64 video."""

    model_config = STRICT
    type: Literal["text", "image_url", "video_url", "input_video"]
    text: str | None = None
    image_url: MediaUrl | str | None = None
    video_url: MediaUrl | str | None = None
    input_video: VideoData | str | None = None  # llama.cpp's part: base64, as a string or {"data": ...}

    @model_validator(mode="after")
    def _has_its_field(self) -> ContentPart:
        value = getattr(self, self.type)
        if not value:
            raise ValueError(f"a {self.type} part needs its {self.type!r} field")
        return self


class ChatMessage(BaseModel):
    model_config = STRICT
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] = Field(min_length=1)
    name: str | None = None  # a participant's name: accepted, not shown to the model


class StreamOptions(BaseModel):
    model_config = STRICT
    include_usage: bool = False


class JsonSchemaFormat(BaseModel):
    model_config = STRICT
    name: str | None = None
    description: str | None = None
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    model_config = STRICT
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class CompletionRequest(BaseModel):
    """OpenAI's chat-completions request, and this server's own fields for videos (`fps` ... `split`)."""

    model_config = STRICT
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = Field(None, ge=0, le=2)  # OpenAI's range
    top_p: float | None = Field(None, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    response_format: ResponseFormat | None = None
    # Videos' sampling, this server's own fields.
    fps: float | None = None
    max_frames: int | None = None
    start: float | None = None
    end: float | None = None
    split: Literal["fixed", "scenes"] | None = None
    # "prompt": each video's transcript before the question (docs/speech.md); the server's --speech default.
    speech: Literal["off", "prompt"] | None = None
    # Accepted and ignored.
    user: str | None = None
    metadata: dict[str, str] | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    # Accepted at their defaults (DEFAULTS), refused otherwise.
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    logit_bias: dict[str, float] | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    functions: list[Any] | None = None
    function_call: Any = None
    parallel_tool_calls: bool | None = None
    modalities: list[str] | None = None
    audio: Any = None
    prediction: Any = None
    reasoning_effort: Any = None
    web_search_options: Any = None
    moderation: Any = None
    store: bool | None = None
    service_tier: str | None = None
    verbosity: str | None = None
    n: int | None = None


# --- the request as the server takes it ---


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
    seed: int | None = None  # sampling's seed: a seeded request is answered in a generate call of its own
    speech: str = "off"  # "prompt": each video's transcript goes before the question


def parse_request(
    body: bytes, sampling: SamplingOptions, max_new_tokens: int, speech: str = "off"
) -> ChatRequest:
    """The request in the JSON `body`, with `sampling` as its videos' defaults and `speech` as its speech
    default; APIError 400 if bad.

    Compiles nothing and reads no medium; it does check a JSON schema against its metaschema, so run it
    off the event loop.
    """
    try:
        request = CompletionRequest.model_validate_json(body)
    except ValidationError as error:
        raise _invalid(error) from error
    for name, accepted in DEFAULTS.items():
        value = getattr(request, name)
        if value is not None and value not in accepted:
            raise bad(
                f"{name} is not supported here: send {_defaults(accepted)}.", name, "unsupported_parameter"
            )
    turns = tuple(_turn(message, f"messages[{index}]") for index, message in enumerate(request.messages))
    if turns[-1].role != "user":
        raise bad("The last message must be the user's.", f"messages[{len(turns) - 1}].role")
    return ChatRequest(
        model=request.model,
        turns=turns,
        generation=_generation(request, max_new_tokens),
        sampling=_sampling(request, sampling),
        schema=_schema(request.response_format),
        stream=request.stream,
        include_usage=bool(request.stream_options and request.stream_options.include_usage),
        stop=_stop(request.stop),
        seed=request.seed,
        speech=request.speech or speech,
    )


def _invalid(error: ValidationError) -> APIError:
    errors = error.errors(include_url=False)
    # The deepest: of a union's members' errors, the one of the member that matched the input's shape.
    first = max(errors, key=lambda e: len(e["loc"]))
    param = _param(first["loc"])
    if first["type"] == "extra_forbidden":
        return bad(f"Unsupported parameter: {param}.", param, "unsupported_parameter")
    if first["type"] == "json_invalid":
        return bad(f"The body is not valid JSON: {first['msg']}.", None, "invalid_json")
    return bad(f"{param}: {first['msg']}." if param else f"{first['msg']}.", param)


def _param(loc: tuple[int | str, ...]) -> str | None:
    """A pydantic error location as OpenAI names a field ("messages[1].content[0]"), without union members."""
    names = ""
    for item in loc:
        if isinstance(item, int):
            names += f"[{item}]"
        elif not _union_member(item):
            names += f".{item}" if names else item
    return names or None


def _union_member(item: str) -> bool:
    """Whether a location item names a member of a union (`str`, `list[ContentPart]`), not a field."""
    return "[" in item or item in {"str", "int", "float", "bool", "none", "MediaUrl", "VideoData"}


def _defaults(accepted: tuple[Any, ...]) -> str:
    return " or ".join([json.dumps(value) for value in accepted] + ["null"])


def _turn(message: ChatMessage, where: str) -> Turn:
    role = "system" if message.role == "developer" else message.role
    if isinstance(message.content, str):
        return Turn(role, (Part(f"{where}.content", text=message.content),))
    parts = tuple(_part(part, f"{where}.content[{index}]") for index, part in enumerate(message.content))
    if role != "user" and any(part.kind for part in parts):
        raise bad("Only user messages may hold images and videos.", f"{where}.content")
    return Turn(role, parts)


def _part(part: ContentPart, where: str) -> Part:
    if part.type == "text":
        return Part(where, text=part.text)
    if part.type == "input_video":
        data = part.input_video.data if isinstance(part.input_video, VideoData) else part.input_video
        return Part(where, kind="video", url=f"data:video/mp4;base64,{data}")
    value = getattr(part, part.type)
    url = value.url if isinstance(value, MediaUrl) else value
    return Part(where, kind=part.type.removesuffix("_url"), url=url)


def _generation(request: CompletionRequest, limit: int) -> GenerationOptions:
    name = "max_completion_tokens" if request.max_completion_tokens is not None else "max_tokens"
    tokens = (
        request.max_completion_tokens if request.max_completion_tokens is not None else request.max_tokens
    )
    tokens = limit if tokens is None else tokens
    if not 1 <= tokens <= limit:
        raise bad(f"{name} must be an integer from 1 to {limit} (this server's limit).", name)
    sample = bool(request.temperature)  # 0 or none: greedy, whatever top_p says
    try:
        return GenerationOptions(
            max_new_tokens=tokens,
            do_sample=sample,
            temperature=request.temperature if sample else GenerationOptions.temperature,  # type: ignore[arg-type]
            top_p=request.top_p if sample and request.top_p is not None else GenerationOptions.top_p,
        )
    except OptionsError as error:
        raise bad(str(error), error.option) from error


def _sampling(request: CompletionRequest, defaults: SamplingOptions) -> SamplingOptions:
    asked = {name: getattr(request, name) for name in ("fps", "max_frames", "start", "end", "split")}
    asked = {name: value for name, value in asked.items() if value is not None}
    if asked.get("max_frames", defaults.max_frames) > defaults.max_frames:
        limit = defaults.max_frames
        raise bad(f"max_frames must be at most {limit} (this server's --max-frames).", "max_frames")
    try:
        return SamplingOptions(**{**defaults.to_dict(), **asked})
    except OptionsError as error:
        raise bad(f"Video sampling: {error}", error.option) from error


def _schema(response_format: ResponseFormat | None) -> JsonSchema | None:
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object":
        return JSON_OBJECT
    if response_format.json_schema is None:
        raise bad("A json_schema response_format needs its json_schema.", "response_format.json_schema")
    schema = response_format.json_schema.schema_
    depth, values = _measure(schema)
    if depth > MAX_SCHEMA_DEPTH:
        raise bad(f"The schema is nested more than {MAX_SCHEMA_DEPTH} levels deep.", "response_format")
    if values > MAX_SCHEMA_VALUES:
        raise bad(f"The schema holds more than {MAX_SCHEMA_VALUES:,} values.", "response_format")
    try:
        return JsonSchema.from_value(schema, "response_format.json_schema.schema")
    except OptionsError as error:
        raise bad(str(error), "response_format") from error


def _measure(value: Any) -> tuple[int, int]:
    """How deep a JSON value nests (a scalar is 0) and how many values it holds, counted without recursion;
    the count stops once past MAX_SCHEMA_VALUES, and the depth past MAX_SCHEMA_DEPTH."""
    deepest, count, stack = 0, 0, [(value, 0)]
    while stack and count <= MAX_SCHEMA_VALUES and deepest <= MAX_SCHEMA_DEPTH:
        item, depth = stack.pop()
        deepest, count = max(deepest, depth), count + 1
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return deepest, count


def _stop(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if not all(stops) or len(stops) > 4:
        raise bad("stop must be a string or a list of up to 4 non-empty strings.", "stop")
    return tuple(stops)


def sse(data: Any) -> str:
    """One Server-Sent Event carrying `data` as JSON."""
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"
