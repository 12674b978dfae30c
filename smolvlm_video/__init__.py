"""smolvlm_video: watch videos with the small SmolVLM2 vision-language models.

The video side (probing, sampling, decoding) imports neither torch nor transformers; the model side
(`load_model`, `generate`, `stream`) loads them on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from .errors import (
    CorruptVideoError,
    EmptyVideoError,
    GenerationError,
    ImageError,
    ModelLoadError,
    NotAVideoError,
    OptionsError,
    OutOfMemoryError,
    OutputError,
    SmolVLMVideoError,
    VideoError,
    VideoNotFoundError,
)
from .options import GenerationOptions, ModelOptions, SamplingOptions
from .probe import VideoInfo, probe
from .sampling import FramePlan, Window, windows
from .video import SampledVideo, plan_video, sample_video, sample_windows

# Names served lazily, so `import smolvlm_video` stays free of torch and transformers.
_LAZY = {
    "MODELS": "model",
    "LoadedModel": "model",
    "load_model": "model",
    "Message": "prompts",
    "PromptStrings": "prompts",
    "generate": "generate",
    "stream": "generate",
    "build_inputs": "inputs",
    "CaptionJob": "captioning",
    "CaptionRun": "runs",
    "Captioning": "runs",
    "RunPlan": "runs",
    "Shard": "runs",
    "plan_run": "runs",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CorruptVideoError",
    "EmptyVideoError",
    "FramePlan",
    "GenerationError",
    "GenerationOptions",
    "ImageError",
    "ModelLoadError",
    "ModelOptions",
    "NotAVideoError",
    "OptionsError",
    "OutOfMemoryError",
    "OutputError",
    "SampledVideo",
    "SamplingOptions",
    "SmolVLMVideoError",
    "VideoError",
    "VideoInfo",
    "VideoNotFoundError",
    "Window",
    "__version__",
    "plan_video",
    "probe",
    "sample_video",
    "sample_windows",
    "windows",
    *_LAZY,
]
