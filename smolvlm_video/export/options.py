"""What an export writes, and how it cuts clips: frozen option objects, checked once.

Free of PyArrow, so that the command line can offer their choices and defaults without loading it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import av

from ..batch.sinks import SINKS
from ..checks import check_number
from ..errors import OptionsError

FORMATS = ("hf", "parquet", "webdataset")  # the first the default
CUT_MODES = ("exact", "copy")
DEFAULT_CODEC = "libx264"
DEFAULT_CRF = 23  # libx264's own default: visually near the source at a fraction of its size
DEFAULT_CUT_WORKERS = 2  # runs of windows cut at once; each encoder also uses several threads of its own
DEFAULT_SHARD_MB = 500  # a new shard once the current one passes this many MB (the Hub suggests < 1 GB)
MIN_CLIP_SIDE = 16  # pixels: the smallest longest side a cut clip may be scaled to
MAX_CLIP_SIDE = 7680  # pixels: 8K, the largest


@dataclass(frozen=True)
class CutOptions:
    """How windows are cut into clips of their own (see `cutting`)."""

    mode: Literal["exact", "copy"] = "exact"  # exact: re-encoded from the window's first frame; copy: packets
    codec: str = DEFAULT_CODEC  # the video encoder of exact cuts (any FFmpeg encoder: libx264, libx265, ...)
    crf: int = DEFAULT_CRF  # the encoder's constant rate factor: lower is better and bigger
    preset: str | None = None  # the encoder's speed preset (libx264: ultrafast ... veryslow); None: its own
    side: int | None = None  # scale each frame so its longest side is this many pixels; None: keep the size

    def __post_init__(self) -> None:
        if self.mode not in CUT_MODES:
            raise OptionsError(f"cut mode must be one of {', '.join(CUT_MODES)}, got {self.mode!r}.", "mode")
        if self.side is not None:
            check_number("side", self.side, least=MIN_CLIP_SIDE, most=MAX_CLIP_SIDE, whole=True)
        check_number("crf", self.crf, least=0, most=63, whole=True)
        if self.mode == "exact":
            _check_encoder(self.codec, self.crf, self.preset)

    @property
    def digest(self) -> str:
        """8 hex digits that change with any option that changes a cut's bytes: part of each file's name."""
        key = repr((self.mode, self.codec, self.crf, self.preset, self.side))
        return hashlib.sha256(key.encode()).hexdigest()[:8]

    def file_name(self, start: float, end: float) -> str:
        """The name of the clip of the window [start, end): its span in milliseconds, and the options."""
        return f"{round(start * 1000):09d}-{round(end * 1000):09d}-{self.mode}-{self.digest}.mp4"


def _check_encoder(codec: str, crf: int, preset: str | None) -> None:
    """Open the encoder once on a tiny picture, so a codec or preset it does not take is refused up front."""
    try:
        if av.codec.Codec(codec, "w").type != "video":
            raise ValueError(codec)
    except (av.error.FFmpegError, ValueError) as error:
        raise OptionsError(
            f"FFmpeg (as PyAV has it) has no video encoder named {codec!r}.", "codec"
        ) from error
    if not _opens(codec, crf, preset):
        if preset is not None and _opens(codec, crf, None):
            raise OptionsError(f"{codec} has no preset {preset!r}.", "preset")
        raise OptionsError(
            f"{codec} cannot encode yuv420p video at CRF {crf}; pick another --clip-codec.", "codec"
        )


def _opens(codec: str, crf: int, preset: str | None) -> bool:
    context = av.codec.CodecContext.create(codec, "w")
    context.width, context.height, context.pix_fmt = 64, 64, "yuv420p"
    context.time_base = Fraction(1, 25)
    context.options = {"crf": str(crf), **({"preset": preset} if preset else {})}
    try:
        context.open()
    except (av.error.FFmpegError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class ExportOptions:
    """What an export writes."""

    format: Literal["hf", "parquet", "webdataset"] = "hf"
    cut: CutOptions | None = None  # cut each window into a clip file of its own, so; None: no clip files
    workers: int = DEFAULT_CUT_WORKERS  # runs of windows cut at once
    shard_mb: int = DEFAULT_SHARD_MB  # hf and webdataset: a new shard after this many MB
    force: bool = False  # replace the paths the export writes even where an export did not write them
    keep_stale_cuts: bool = False  # keep clip files that no row uses any more (default: removed)
    license: str | None = None  # the card's license (a Hub license id: apache-2.0, cc-by-4.0, ...)
    name: str | None = None  # the Hub repo id the card's snippets use ("user/dataset"); None: <user>/<folder>
    # (OLD, NEW) folders: a source captioned under OLD is looked for under NEW, where it has moved since
    source_roots: tuple[tuple[str, str], ...] = ()
    # Published tables hold no local absolute path: `path` is relative to this folder (None: the common
    # folder of the sources), and `abs_path` is left out unless kept.
    relative_to: str | None = None
    keep_abs_paths: bool = False
    sink: str = "jsonl"  # the records' format: a name in batch.sinks.SINKS, whose `read` export reads through

    def __post_init__(self) -> None:
        if self.sink not in SINKS:
            raise OptionsError(f"sink must be one of {', '.join(SINKS)}, got {self.sink!r}.", "sink")
        if self.format not in FORMATS:
            raise OptionsError(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}.", "format")
        check_number("workers", self.workers, least=1, whole=True)
        check_number("shard_mb", self.shard_mb, least=1, whole=True)
