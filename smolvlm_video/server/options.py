"""What the server serves and allows: one frozen object, with the defaults the command shows. No torch."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..checks import check_number
from ..errors import OptionsError
from ..options import SamplingOptions
from ..speech.options import SpeechOptions

DEFAULT_MAX_BATCH = 8  # chats in one generate call
DEFAULT_MAX_QUEUE = 64  # requests waiting; one more is refused with 429
DEFAULT_MAX_NEW_TOKENS = 1024
DEFAULT_MAX_BODY_MB = 200
DEFAULT_MAX_MEDIA_MB = 100
DEFAULT_FETCH_SECONDS = 20.0  # with --allow-url-fetch: the time a medium's download may take
MAX_FETCH_SECONDS = 3600.0


@dataclass(frozen=True)
class ServerOptions:
    """What the server serves and allows."""

    api_key: str | None = None  # clients send it as a Bearer token; None: no key asked
    allowed_media_paths: tuple[Path, ...] = ()  # folders whose files requests may name; none by default
    max_body_mb: int = DEFAULT_MAX_BODY_MB  # the largest request body (base64 media inflate it by a third)
    max_media_mb: int = DEFAULT_MAX_MEDIA_MB  # the largest medium, once decoded from base64
    max_new_tokens: int = (
        DEFAULT_MAX_NEW_TOKENS  # the most tokens an answer may take (a request's max_tokens is capped by it)
    )
    sampling: SamplingOptions = field(default_factory=SamplingOptions)  # videos' defaults, as `ask` has them
    model_names: tuple[str, ...] = ()  # other names the model answers to (the --model given, e.g. "256M")
    fetch_seconds: float | None = None  # how long fetching an http(s) medium may take; None: URLs refused
    fetch_hosts: tuple[str, ...] = ()  # names, addresses or CIDR networks a fetch may reach beyond the public
    fetch_proxy: str | None = None  # every fetch goes through this proxy (which then decides what is reached)
    max_batch: int = DEFAULT_MAX_BATCH  # requests answered in one generate call
    max_queue: int = DEFAULT_MAX_QUEUE  # requests waiting for the model; one more gets 429
    # The speech model a request's `"speech": "prompt"` uses; its mode is the requests' default (off, prompt)
    speech: SpeechOptions = field(default_factory=SpeechOptions)

    def __post_init__(self) -> None:
        for name in ("max_body_mb", "max_media_mb", "max_new_tokens", "max_batch", "max_queue"):
            check_number(name, getattr(self, name), least=1, whole=True)
        if self.speech.mode == "record":
            raise OptionsError(
                "the server's speech default is off or prompt: a response has no record.", "mode"
            )
        if self.fetch_seconds is not None:
            check_number("fetch_seconds", self.fetch_seconds, above=0, most=MAX_FETCH_SECONDS)
