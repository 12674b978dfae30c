"""The images and videos of a request: from `data:` URIs, or from files under folders the operator allows.

A `data:` medium is written to a temporary file, read (an image whole, a video sampled into frames), and
deleted. A path or `file://` URL is read only where it lies under one of `allowed` (after resolving links),
so a client cannot read what the operator did not share. `http(s)` URLs are fetched only where the operator
allows it, from public addresses only, within the medium's size limit and one deadline (`fetching`).
Errors name the part (`messages[1].content[0]`), never a path on the server.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..errors import FileError, SmolVLMVideoError, TooLargeError
from ..options import SamplingOptions
from ..speech import Transcript
from ..video import SampledVideo, sample_video
from ..video.media import Media, is_image, load_image
from .options import ServerOptions
from .protocol import APIError, Part, bad

logger = logging.getLogger(__name__)

MB = 1 << 20
FETCH_FAILED = "url_fetch_failed"
# A video file's transcript from start to end (seconds): `listening.Listener.transcribe`
Listen = Callable[[Path, float, float], Transcript]


def load_part(
    part: Part, sampling: SamplingOptions, options: ServerOptions, listen: Listen | None = None
) -> tuple[Media, Transcript | None]:
    """The image or sampled video a media part names, and with `listen` a video's transcript over its
    sampled span (None otherwise); APIError (400 or 413) if it cannot be had.

    Whatever the URL holds (a NUL byte, a path too long for the system, a broken host), the answer is a
    400 that names the part.
    """
    assert part.url is not None and part.kind is not None
    max_bytes = options.max_media_mb * MB
    if part.url.startswith("data:"):
        return _from_bytes(part, _decoded(part, max_bytes), sampling, listen)
    try:
        url = urlparse(part.url)
    except ValueError as error:  # "http://[::1": an unclosed address
        raise bad(f"The URL cannot be read ({error}).", part.where) from error
    if url.scheme in ("http", "https"):
        if options.fetch_seconds is None:
            raise bad("This server does not fetch URLs (--allow-url-fetch); send a data: URI.", part.where,
                      "url_fetch_off")  # fmt: skip
        return _from_bytes(part, _fetched(part, options), sampling, listen)
    if url.scheme not in ("", "file"):
        raise bad(f"{url.scheme}: URLs are not read; send a data: URI.", part.where, "unsupported_url")
    try:
        path = Path(unquote(url.path)) if url.scheme == "file" else Path(part.url)
        if not _allowed(path, options.allowed_media_paths):
            shared = "That path is not under a folder this server shares (--allowed-media-path)"
            raise bad(f"{shared}; send a data: URI.", part.where, "path_not_allowed")
        if path.is_file() and path.stat().st_size > max_bytes:
            raise _too_big(part, max_bytes)
    except (OSError, ValueError) as error:  # a NUL byte, a name too long for the file system
        raise bad("That path cannot be read.", part.where, "bad_path") from error
    return _read(part, path, sampling, listen)


def _allowed(path: Path, allowed: Sequence[Path]) -> bool:
    if not path.is_absolute():
        return False
    real = Path(os.path.realpath(path))
    return any(real.is_relative_to(Path(os.path.realpath(folder))) for folder in allowed)


def _decoded(part: Part, max_bytes: int) -> bytes:
    assert part.url is not None
    header, comma, payload = part.url.partition(",")
    if not comma or not header.endswith(";base64"):
        raise bad("A data: URI must be base64: data:<type>;base64,<data>.", part.where)
    if len(payload) * 3 // 4 > max_bytes:
        raise _too_big(part, max_bytes)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as error:
        raise bad(f"The base64 data does not decode ({error}).", part.where) from error


def _too_big(part: Part, max_bytes: int) -> APIError:
    return APIError(413, f"The medium is over the server's limit of {max_bytes >> 20} MB.", part.where)


def _fetched(part: Part, options: ServerOptions) -> bytes:
    """The bytes at an http(s) URL, within the server's fetch policy; why a fetch failed is logged only."""
    from .fetching import FetchFailed, FetchPolicy, TooLarge, fetch

    assert part.url is not None and options.fetch_seconds is not None
    max_bytes = options.max_media_mb * MB
    policy = FetchPolicy.allowing(options.fetch_seconds, max_bytes, options.fetch_hosts, options.fetch_proxy)
    try:
        return fetch(part.url, policy)
    except TooLarge as error:
        raise _too_big(part, max_bytes) from error
    except FetchFailed as error:
        logger.warning("fetching %s for %s failed: %s", part.url[:200], part.where, error)
        raise bad(f"Could not fetch {part.where}.", part.where, FETCH_FAILED) from error


def _from_bytes(
    part: Part, data: bytes, sampling: SamplingOptions, listen: Listen | None
) -> tuple[Media, Transcript | None]:
    with tempfile.TemporaryDirectory(prefix="smolvlm-serve-") as folder:
        path = Path(folder) / "medium"
        path.write_bytes(data)
        return _read(
            part, path, sampling, listen
        )  # read whole, frames and speech: the file goes with the folder


def _read(
    part: Part, path: Path, sampling: SamplingOptions, listen: Listen | None
) -> tuple[Media, Transcript | None]:
    try:
        if part.kind == "image":
            return load_image(path), None
        if is_image(path):
            raise bad("This is an image, not a video; send it as an image_url part.", part.where)
        video = sample_video(path, sampling)
        return video, _heard(video, path, listen)
    except TooLargeError as error:  # over the server's pixel budget (--max-pixels): refused before decoding
        raise APIError(413, f"Cannot use this {part.kind}: {error.cause}", part.where, error.code) from error
    except FileError as error:  # its message names the file: say the cause alone
        raise bad(f"Cannot use this {part.kind}: {error.cause}", part.where, error.code) from error
    except SmolVLMVideoError as error:
        raise bad(f"Cannot use this {part.kind}: {error}", part.where, error.code) from error


def _heard(video: SampledVideo, path: Path, listen: Listen | None) -> Transcript | None:
    """The video's transcript over its sampled window, where the request asked for speech."""
    return listen(path, video.window.start, video.window.end) if listen is not None else None
