"""The images and videos of a request: from `data:` URIs, or from files under folders the operator allows.

A `data:` medium is written to a temporary file, read (an image whole, a video sampled into frames), and
deleted. A path or `file://` URL is read only where it lies under one of `allowed` (after resolving links),
so a client cannot read what the operator did not share. `http(s)` URLs are fetched only where the operator
allows it, within the medium's size limit and a timeout.
Errors name the part (`messages[1].content[0]`), never a path on the server.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..errors import FileError, SmolVLMVideoError, TooLargeError
from ..options import SamplingOptions
from ..video import sample_video
from ..video.media import Media, is_image, load_image
from .protocol import APIError, Part, bad


def load_part(
    part: Part,
    sampling: SamplingOptions,
    allowed: Sequence[Path],
    max_bytes: int,
    fetch_seconds: float | None,
) -> Media:
    """The image or sampled video a media part names; APIError (400 or 413) if it cannot be had.

    `fetch_seconds`: how long an http(s) URL may take to fetch; None: such URLs are refused.
    """
    assert part.url is not None and part.kind is not None
    if part.url.startswith("data:"):
        return _from_bytes(part, _decoded(part, max_bytes), sampling)
    scheme = urlparse(part.url).scheme
    if scheme in ("http", "https"):
        if fetch_seconds is None:
            raise bad("This server does not fetch URLs (--allow-url-fetch); send a data: URI.", part.where,
                      "url_fetch_off")  # fmt: skip
        return _from_bytes(part, _fetched(part, max_bytes, fetch_seconds), sampling)
    path = Path(unquote(urlparse(part.url).path)) if scheme == "file" else Path(part.url)
    if scheme not in ("", "file") or not _allowed(path, allowed):
        raise bad(
            "That path is not under a folder this server shares (--allowed-media-path); send a data: URI.",
            part.where,
            "path_not_allowed",
        )
    if path.is_file() and path.stat().st_size > max_bytes:
        raise _too_big(part, max_bytes)
    return _read(part, path, sampling)


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


FETCH_FAILED = "url_fetch_failed"


def _too_big(part: Part, max_bytes: int) -> APIError:
    return APIError(413, f"The medium is over the server's limit of {max_bytes >> 20} MB.", part.where)


def _fetched(part: Part, max_bytes: int, seconds: float) -> bytes:
    """The bytes at an http(s) URL, read up to `max_bytes`, within `seconds`."""
    import httpx

    assert part.url is not None
    data = bytearray()
    try:
        with httpx.stream("GET", part.url, timeout=seconds, follow_redirects=True) as response:
            if response.status_code != 200:
                raise bad(
                    f"Fetching the URL gave HTTP {response.status_code}.", part.where, "url_fetch_failed"
                )
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > max_bytes:
                    raise APIError(
                        413, f"The medium is over the server's limit of {max_bytes >> 20} MB.", part.where
                    )
    except httpx.HTTPError as error:
        raise bad(
            f"Fetching the URL failed ({type(error).__name__}).", part.where, "url_fetch_failed"
        ) from error
    return bytes(data)


def _from_bytes(part: Part, data: bytes, sampling: SamplingOptions) -> Media:
    with tempfile.TemporaryDirectory(prefix="smolvlm-serve-") as folder:
        path = Path(folder) / "medium"
        path.write_bytes(data)
        return _read(part, path, sampling)  # frames are in memory once read: the file goes with the folder


def _read(part: Part, path: Path, sampling: SamplingOptions) -> Media:
    try:
        if part.kind == "image":
            return load_image(path)
        if is_image(path):
            raise bad("This is an image, not a video; send it as an image_url part.", part.where)
        return sample_video(path, sampling)
    except TooLargeError as error:  # over the server's pixel budget (--max-pixels): refused before decoding
        raise APIError(413, f"Cannot use this {part.kind}: {error.cause}", part.where, error.code) from error
    except FileError as error:  # its message names the file: say the cause alone
        raise bad(f"Cannot use this {part.kind}: {error.cause}", part.where, error.code) from error
    except SmolVLMVideoError as error:
        raise bad(f"Cannot use this {part.kind}: {error}", part.where, error.code) from error
