"""smolvlm_video: watch videos with the small SmolVLM2 vision-language models.

The video side (probing, sampling, decoding) imports neither torch nor transformers; the model side
(`load_model`, `load_fitted`, `generate`, `stream`) loads them on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import (
    CorruptVideoError,
    CutError,
    EmptyVideoError,
    GenerationError,
    ImageError,
    ModelLoadError,
    NotAVideoError,
    OptionsError,
    OutOfMemoryError,
    OutputError,
    RecordsError,
    SmolVLMVideoError,
    SourceChangedError,
    VideoError,
    VideoNotFoundError,
)
from .options import GenerationOptions, ModelOptions, SamplingOptions
from .version import __version__
from .video import SampledVideo, plan_video, sample_video, sample_windows
from .video.probe import VideoInfo, probe
from .video.sampling import FramePlan, Window, windows

# Names served lazily, so `import smolvlm_video` stays free of torch and transformers.
_LAZY = {
    "MODELS": "model.registry",
    "LoadedModel": "model.loading",
    "load_model": "model.loading",
    "load_fitted": "model.loading",
    "Chat": "model.prompts",
    "Message": "model.prompts",
    "chat": "model.prompts",
    "Question": "model.schemas",
    "JsonSchema": "model.schemas",
    "PromptStrings": "model.prompts",
    "generate": "model.generate",
    "stream": "model.generate",
    "build_inputs": "model.inputs",
    "CaptionJob": "batch.captioning",
    "CaptionRun": "batch.runs",
    "Captioning": "batch.runs",
    "RunPlan": "batch.runs",
    "Shard": "batch.runs",
    "plan_run": "batch.runs",
    "ExportOptions": "export.options",
    "CutOptions": "export.options",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CorruptVideoError",
    "CutError",
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
    "RecordsError",
    "SampledVideo",
    "SamplingOptions",
    "SmolVLMVideoError",
    "SourceChangedError",
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
