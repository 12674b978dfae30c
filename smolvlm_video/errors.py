"""The errors smolvlm_video raises.

Every error a user can cause (a bad file, a bad option, a model that cannot be loaded) is a
subclass of `SmolVLMVideoError` with a message that says what went wrong and what to do. Front ends
catch the base class and show the message; each class also carries a short stable `code` that
machine-readable output (JSONL records, JSON progress) can use.
"""

from __future__ import annotations

import os


class SmolVLMVideoError(Exception):
    """Base class of every error smolvlm_video raises on purpose."""

    code = "error"


class OptionsError(SmolVLMVideoError, ValueError):
    """An option has a value that cannot work (a negative fps, a window that ends before it starts).

    `option` names the field of the option object at fault ("fps", "max_new_tokens"), so a front end
    can point at its own control for it; None where no single field is to blame.
    """

    code = "bad_option"

    def __init__(self, message: str, option: str | None = None) -> None:
        self.option = option
        super().__init__(message)

    def __reduce__(self) -> tuple:
        return type(self), (str(self), self.option)


class FileError(SmolVLMVideoError):
    """A file cannot be used. The message names the file and the cause."""

    code = "file_error"

    def __init__(self, path: str | os.PathLike[str], cause: str) -> None:
        self.path = os.fspath(path)
        self.cause = cause
        super().__init__(f"{self.path}: {cause}")

    def __reduce__(self) -> tuple:
        return type(self), (self.path, self.cause)  # pickles whole, e.g. between Ray workers


class VideoError(FileError):
    """A video file cannot be used. The message names the file and the cause."""

    code = "video_error"


class VideoNotFoundError(VideoError):
    """The path does not exist or is not a file."""

    code = "not_found"


class EmptyVideoError(VideoError):
    """The file has zero bytes, or its video stream has no frames."""

    code = "empty"


class NotAVideoError(VideoError):
    """The file is readable but is not a video: text, an image, or audio only."""

    code = "not_a_video"


class CorruptVideoError(VideoError):
    """The file looks like a video but cannot be demuxed or decoded (truncated, damaged)."""

    code = "corrupt"


class TooLargeError(VideoError):
    """The video's frames, or a window's frames together, have more pixels than the budget allows.

    Refused from the container's header, before a frame is decoded (`SamplingOptions.max_pixels`).
    """

    code = "too_large"


class SourceChangedError(VideoError):
    """The video has changed (its size or modification time) since it was captioned."""

    code = "changed"


class CutError(VideoError):
    """A window of a video could not be cut into a clip of its own."""

    code = "cut_failed"


class AudioError(FileError):
    """A video's audio stream cannot be decoded: its transcript is an error, its captions still come."""

    code = "audio_error"


class ImageError(FileError):
    """An image file cannot be used: missing, not an image, or damaged. The message names the file."""

    code = "bad_image"


class ModelLoadError(SmolVLMVideoError):
    """A model or its processor could not be loaded (offline, unknown id, missing files)."""

    code = "model_load"


class GenerationError(SmolVLMVideoError):
    """The model failed while generating (a prompt longer than the context, a CUDA fault, ...)."""

    code = "generation"


class PromptTooLongError(GenerationError):
    """A chat's prompt and answer cannot fit the model's context: refused before generating."""

    code = "prompt_too_long"


class OutOfMemoryError(GenerationError):
    """The device, or the CPU's allocator, ran out of memory while generating."""

    code = "out_of_memory"


class TruncatedError(GenerationError):
    """An answer constrained to a JSON schema was cut off by max_new_tokens before its JSON closed."""

    code = "truncated"


class OutputError(SmolVLMVideoError):
    """The records file cannot be written (a full disk, a quota, a file size limit)."""

    code = "output"


class RecordsError(SmolVLMVideoError):
    """A line of a records file is not a caption record. The message names the file and the line."""

    code = "bad_records"
