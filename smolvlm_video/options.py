"""The option objects: how frames are sampled, how text is generated, and which model does it.

Each is a frozen dataclass checked once, when it is built. The CLI and the demo build them the
same way, from the same field names, so a setting means one thing everywhere.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from .checks import check_number
from .errors import OptionsError

# SmolVLM2 was trained on videos of about 3.5 minutes; longer prompts gave little (SmolVLM paper).
MAX_WINDOW_SECONDS = 210.0  # 3.5 minutes of video per prompt

# The checkpoints' own preprocessor config: 1 frame per second, at most 64 frames per video.
DEFAULT_FPS = 1.0
DEFAULT_MAX_FRAMES = 64

# Vision encoder input side in pixels: 512 for the 256M and 500M models, 384 for 2.2B.
DEFAULT_FRAME_SIDE = 512

DEFAULT_SNAP_SECONDS = 1.0  # a frame may move this far onto a keyframe (see SamplingOptions.snap_seconds)

# Bounds that keep outside numbers from reaching the sampler as settings (NaN and infinity are refused too).
MAX_FPS = 1000.0  # frames per second to sample: no video has more
MAX_SECONDS = 7 * 24 * 3600.0  # 604,800 s, a week: the latest start or end, the longest window
MAX_FRAME_SIDE = 4096  # pixels

# The pixel budget of decoding, checked against the container's header before a frame is decoded. A few
# MB of file can hold frames of any size: a 4.5 MB MJPEG of 16000x16000 frames decodes at 384 MB a frame.
MAX_FRAME_PIXELS = 7680 * 4320  # 33,177,600 pixels: 8K UHD, the largest frame a video may have
# The most source pixels one window may decode, frames x width x height: 64 frames of 8K by default.
MAX_TOTAL_PIXELS = DEFAULT_MAX_FRAMES * MAX_FRAME_PIXELS  # 2,123,366,400 pixels

DEFAULT_MODEL = "256M"  # a name in model.registry.MODELS
DEVICES = ("auto", "cuda", "mps", "cpu")
DTYPE_NAMES = ("auto", "bfloat16", "float16", "float32")
ATTENTIONS = ("auto", "sdpa", "flash_attention_2", "eager")  # transformers' attn_implementation names
# How the vision encoder takes a batch's frames: all chats in one call, or one chat's per call
VISION_MODES = ("auto", "batched", "per-chat")
# A compiled decoding step with a static cache (`model.compiling`): auto (on CUDA), on or off
COMPILE_MODES = ("auto", "on", "off")

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

    # The pixel budget (see MAX_FRAME_PIXELS): a video whose frames are larger, or a window whose frames
    # add up to more, is refused before anything is decoded.
    max_pixels: int = MAX_FRAME_PIXELS  # the most pixels one frame of a video may have
    max_total_pixels: int = MAX_TOTAL_PIXELS  # the most source pixels one window may decode

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise OptionsError(f"split must be one of {', '.join(SPLITS)}, got {self.split!r}.", "split")
        if self.split == "scenes" and importlib.util.find_spec("scenedetect") is None:
            raise OptionsError(
                "split 'scenes' needs PySceneDetect: pip install 'smolvlm-video[scenes]'.", "split"
            )
        if self.backend not in BACKENDS:
            raise OptionsError(
                f"backend must be one of {', '.join(BACKENDS)}; got {self.backend!r}.", "backend"
            )
        check_number("fps", self.fps, above=0, most=MAX_FPS)
        check_number("max_frames", self.max_frames, least=1, whole=True)
        if self.frame_side is not None:
            check_number("frame_side", self.frame_side, least=16, most=MAX_FRAME_SIDE, whole=True)
        if self.start is not None:
            check_number("start", self.start, least=0, most=MAX_SECONDS)
        if self.end is not None:
            check_number("end", self.end, above=0, most=MAX_SECONDS)
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise OptionsError(f"end ({self.end} s) must come after start ({self.start} s).", "end")
        check_number("window_seconds", self.window_seconds, above=0, most=MAX_SECONDS)
        check_number("snap_seconds", self.snap_seconds, least=0, most=10)
        check_number("min_scene_seconds", self.min_scene_seconds, least=0, most=MAX_WINDOW_SECONDS)
        check_number("max_pixels", self.max_pixels, least=1, whole=True)
        check_number("max_total_pixels", self.max_total_pixels, least=1, whole=True)

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


MAX_TEMPERATURE = 100.0  # far past any useful one: at 2 the answers are already noise
MAX_REPETITION_PENALTY = 100.0


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
        check_number("max_new_tokens", self.max_new_tokens, least=1, whole=True)
        check_number("min_new_tokens", self.min_new_tokens, least=0, most=self.max_new_tokens, whole=True)
        check_number(
            "temperature",
            self.temperature,
            above=0,
            most=MAX_TEMPERATURE,
            hint="For greedy use do_sample=False.",
        )
        check_number("top_p", self.top_p, above=0, most=1)
        check_number("repetition_penalty", self.repetition_penalty, above=0, most=MAX_REPETITION_PENALTY)

    @classmethod
    def from_temperature(cls, temperature: float = 0.0, **kwargs: Any) -> GenerationOptions:
        """Options where temperature 0 means greedy decoding and anything above samples."""
        check_number("temperature", temperature, least=0, most=MAX_TEMPERATURE, hint="0 is greedy decoding.")
        if temperature == 0:
            return cls(do_sample=False, **kwargs)
        return cls(do_sample=True, temperature=temperature, **kwargs)

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
    # A compiled decoding step with a static cache: auto (on CUDA, off elsewhere; front ends that answer
    # once, such as `ask`, or that may compile again per request, such as ZeroGPU, ask for off), on or off
    compile: str = "auto"

    def __post_init__(self) -> None:
        if not self.name:
            raise OptionsError("name must name a model: 256M, 500M, 2.2B, a Hub id or a folder.", "name")
        check_runtime(self.device, self.dtype, self.attention, self.vision, self.compile)
        if self.feature_cache_mb is not None:
            check_number("feature_cache_mb", self.feature_cache_mb, least=0, whole=True, hint="0: no cache.")


def check_runtime(
    device: str, dtype: str, attention: str, vision: str = "auto", compile: str = "auto"
) -> None:
    """Raise OptionsError unless each is "auto" or a name this project knows (torch-free)."""
    if device not in DEVICES and not device.startswith("cuda:"):
        raise OptionsError(f"device must be one of {', '.join(DEVICES)} or cuda:N, got {device!r}.", "device")
    if dtype not in DTYPE_NAMES:
        raise OptionsError(f"dtype must be one of {', '.join(DTYPE_NAMES)}, got {dtype!r}.", "dtype")
    if attention not in ATTENTIONS:
        raise OptionsError(
            f"attention must be one of {', '.join(ATTENTIONS)}, got {attention!r}.", "attention"
        )
    if vision not in VISION_MODES:
        raise OptionsError(f"vision must be one of {', '.join(VISION_MODES)}, got {vision!r}.", "vision")
    if compile not in COMPILE_MODES:
        raise OptionsError(f"compile must be one of {', '.join(COMPILE_MODES)}, got {compile!r}.", "compile")
