"""The option objects: how frames are sampled, how text is generated, and which model does it.

Each is a frozen dataclass checked once, when it is built. The CLI and the demo build them the
same way, from the same field names, so a setting means one thing everywhere.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from .errors import OptionsError
from .model.registry import DEFAULT_MODEL, check_runtime

# SmolVLM2 was trained on videos of about 3.5 minutes; longer prompts gave little (SmolVLM paper).
MAX_WINDOW_SECONDS = 210.0  # 3.5 minutes of video per prompt

# The checkpoints' own preprocessor config: 1 frame per second, at most 64 frames per video.
DEFAULT_FPS = 1.0
DEFAULT_MAX_FRAMES = 64

# Vision encoder input side in pixels: 512 for the 256M and 500M models, 384 for 2.2B.
DEFAULT_FRAME_SIDE = 512

DEFAULT_SNAP_SECONDS = 1.0  # a frame may move this far onto a keyframe (see SamplingOptions.snap_seconds)

Backend = Literal["auto", "decord", "pyav"]
BACKENDS: tuple[str, ...] = ("auto", "decord", "pyav")
Split = Literal["fixed", "scenes"]
SPLITS: tuple[str, ...] = ("fixed", "scenes")
DEFAULT_MIN_SCENE_SECONDS = 2.0  # with split scenes, a shot shorter than this joins the next one


@dataclass(frozen=True)
class SamplingOptions:
    """How frames are taken from a video. Every sampled frame is its own image: none is averaged."""

    fps: float = DEFAULT_FPS  # frames per second of video to sample, before the max_frames cap
    max_frames: int = DEFAULT_MAX_FRAMES  # at most this many frames per window (one prompt)
    frame_side: int | None = None  # longest edge of a frame in pixels; None: the model's (512 without one)
    start: float | None = None  # seconds; sample from here (None: the start of the video)
    end: float | None = None  # seconds; sample up to here (None: the end of the video)
    window_seconds: float = MAX_WINDOW_SECONDS  # longer spans are split into windows this long at most
    backend: Backend = "auto"  # frame decoder: auto (PyAV) or decord, where installed
    # Move a frame by up to this many seconds (and a third of the gap to its neighbours) onto a
    # keyframe, which decodes on its own instead of after every frame since the last one (PyAV).
    # 0: the exact evenly spread frames.
    snap_seconds: float = DEFAULT_SNAP_SECONDS
    split: Split = "fixed"  # fixed: equal windows; scenes: a window per shot (PySceneDetect)
    min_scene_seconds: float = DEFAULT_MIN_SCENE_SECONDS  # with scenes: shorter shots join the next one

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise OptionsError(f"split must be one of {', '.join(SPLITS)}, got {self.split!r}.", "split")
        if self.split == "scenes" and importlib.util.find_spec("scenedetect") is None:
            raise OptionsError(
                "split 'scenes' needs PySceneDetect: pip install 'smolvlm-video[scenes]'.", "split"
            )
        if not 0 <= self.min_scene_seconds <= MAX_WINDOW_SECONDS:
            raise OptionsError(
                f"min_scene_seconds must be between 0 and {MAX_WINDOW_SECONDS:g}, "
                f"got {self.min_scene_seconds!r}.",
                "min_scene_seconds",
            )
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise OptionsError(
                f"fps must be a positive number of frames per second, got {self.fps!r}.", "fps"
            )
        if self.max_frames < 1:
            raise OptionsError(f"max_frames must be at least 1, got {self.max_frames!r}.", "max_frames")
        if self.frame_side is not None and not 16 <= self.frame_side <= 4096:
            raise OptionsError(
                f"frame_side must be between 16 and 4096 pixels, got {self.frame_side!r}.", "frame_side"
            )
        if self.start is not None and self.start < 0:
            raise OptionsError(f"start must be 0 seconds or later, got {self.start!r}.", "start")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise OptionsError(f"end ({self.end} s) must come after start ({self.start} s).", "end")
        if self.end is not None and self.end <= 0:
            raise OptionsError(f"end must be after 0 seconds, got {self.end!r}.", "end")
        if not self.window_seconds > 0:
            raise OptionsError(
                f"window_seconds must be positive, got {self.window_seconds!r}.", "window_seconds"
            )
        if not 0 <= self.snap_seconds <= 10:
            raise OptionsError(
                f"snap_seconds must be between 0 and 10, got {self.snap_seconds!r}.", "snap_seconds"
            )
        if self.backend not in BACKENDS:
            raise OptionsError(
                f"backend must be one of {', '.join(BACKENDS)}; got {self.backend!r}.", "backend"
            )

    @property
    def side(self) -> int:
        """The frame side in pixels that sampling uses."""
        return self.frame_side or DEFAULT_FRAME_SIDE

    def for_frame_side(self, frame_side: int) -> SamplingOptions:
        """These options with the frame side filled in from a model, unless one was chosen."""
        return self if self.frame_side is not None else replace(self, frame_side=frame_side)

    def to_dict(self) -> dict[str, Any]:
        """The options as plain JSON-ready values."""
        return asdict(self)


@dataclass(frozen=True)
class GenerationOptions:
    """How the model writes its answer. Greedy decoding unless do_sample is set."""

    max_new_tokens: int = 256  # the answer stops after this many tokens
    min_new_tokens: int = 0  # force at least this many tokens (benchmarks use it for equal work)
    do_sample: bool = False  # sample with temperature and top_p instead of greedy decoding
    temperature: float = 0.7  # used only when do_sample is set
    top_p: float = 0.9  # used only when do_sample is set
    repetition_penalty: float = 1.0  # 1.0 means none
    extra: dict[str, Any] = field(default_factory=dict)  # other generate() arguments, passed as given

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise OptionsError(
                f"max_new_tokens must be at least 1, got {self.max_new_tokens!r}.", "max_new_tokens"
            )
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise OptionsError(
                f"min_new_tokens must be between 0 and max_new_tokens ({self.max_new_tokens}), "
                f"got {self.min_new_tokens!r}.",
                "min_new_tokens",
            )
        if not self.temperature > 0:
            raise OptionsError(
                f"temperature must be above 0, got {self.temperature!r}; for greedy use do_sample=False.",
                "temperature",
            )
        if not 0 < self.top_p <= 1:
            raise OptionsError(f"top_p must be in (0, 1], got {self.top_p!r}.", "top_p")
        if not self.repetition_penalty > 0:
            raise OptionsError(
                f"repetition_penalty must be positive, got {self.repetition_penalty!r}.", "repetition_penalty"
            )

    @classmethod
    def from_temperature(cls, temperature: float = 0.0, **kwargs: Any) -> GenerationOptions:
        """Options where temperature 0 means greedy decoding and anything above samples."""
        if temperature < 0:
            raise OptionsError(f"temperature must be 0 (greedy) or more, got {temperature!r}.", "temperature")
        if temperature == 0:
            return cls(do_sample=False, **kwargs)
        return cls(do_sample=True, temperature=temperature, **kwargs)

    def generate_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `model.generate`, without the sampling ones when greedy."""
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": self.do_sample,
            "repetition_penalty": self.repetition_penalty,
        }
        if self.min_new_tokens:
            kwargs["min_new_tokens"] = self.min_new_tokens
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p)
        return {**kwargs, **self.extra}

    def to_dict(self) -> dict[str, Any]:
        """The options as plain JSON-ready values, as a record states them.

        Greedy decoding uses no temperature or top_p, so they are None there: a record says only
        what took effect.
        """
        values = asdict(self)
        if not self.do_sample:
            values.update(temperature=None, top_p=None)
        return values


@dataclass(frozen=True)
class ModelOptions:
    """Which checkpoint to load and where: what a worker needs to load its own copy of the model."""

    name: str = DEFAULT_MODEL  # a registry name ("256M", "500M", "2.2B"), a Hub id, or a local folder
    revision: str | None = None  # Hub branch, tag or commit to pin
    device: str = "auto"  # auto (CUDA, then MPS, then the CPU), cuda, cuda:N, mps or cpu
    dtype: str = "auto"  # auto (the device's best), bfloat16, float16 or float32
    # auto (flash_attention_2 where it works, else sdpa), sdpa, flash_attention_2 or eager
    attention: str = "auto"
    # auto (batched on CUDA, per-chat elsewhere), batched (one vision call a batch) or per-chat
    vision: str = "auto"
    # MB of recent media's vision features kept for reuse (None: the device's default; 0: none)
    feature_cache_mb: int | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise OptionsError("name must name a model: 256M, 500M, 2.2B, a Hub id or a folder.", "name")
        check_runtime(self.device, self.dtype, self.attention, self.vision)
        if self.feature_cache_mb is not None and self.feature_cache_mb < 0:
            raise OptionsError(
                f"feature_cache_mb must be 0 (no cache) or more, got {self.feature_cache_mb!r}.",
                "feature_cache_mb",
            )
