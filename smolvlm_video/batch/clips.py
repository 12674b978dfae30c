"""Find the video files to work on: folders searched for video extensions, files kept as given."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

VIDEO_EXTENSIONS = (
    ".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv", ".3gp",
)  # fmt: skip
DEFAULT_PROMPT = "Describe this video in detail."


def find_clips(
    inputs: Iterable[str | os.PathLike[str]], recursive: bool = True, patterns: Sequence[str] = ()
) -> list[str]:
    """Video files under the given files and folders, sorted, each once.

    Folders are searched for the video extensions (or for `patterns`, shell globs like "*.mp4").
    Files given directly are kept whatever their extension, so a bad one gets an error record.
    """
    found: set[str] = set()
    for item in inputs:
        path = Path(item)
        if not path.is_dir():
            found.add(os.fspath(item))
            continue
        walker = path.rglob("*") if recursive else path.glob("*")
        for candidate in walker:
            if candidate.is_file() and _wanted(candidate, patterns):
                found.add(os.fspath(candidate))
    return sorted(found)


def _wanted(path: Path, patterns: Sequence[str]) -> bool:
    if patterns:
        return any(path.match(pattern) for pattern in patterns)
    return path.suffix.lower() in VIDEO_EXTENSIONS
