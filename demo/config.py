"""The demo's settings, read from environment variables so a Space can change them without code."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from smolvlm_video.model.registry import MODELS
from smolvlm_video.options import DEFAULT_MAX_FRAMES, DEFAULT_MODEL, ModelOptions
from smolvlm_video.speech import SpeechOptions

from .zerogpu import on_zerogpu

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"


@dataclass(frozen=True)
class DemoConfig:
    """What the app serves and how much it takes on. Each field has an environment variable."""

    model: str = DEFAULT_MODEL  # SMOLVLM_MODEL: registry name, Hub id or local folder
    # SMOLVLM_MODELS: comma-separated choices in the settings (default: the registry's models)
    models: tuple[str, ...] = field(default_factory=lambda: tuple(MODELS))
    device: str = "auto"  # SMOLVLM_DEVICE
    dtype: str = "auto"  # SMOLVLM_DTYPE
    attention: str = "auto"  # SMOLVLM_ATTENTION: as --attn
    vision: str = "auto"  # SMOLVLM_VISION: as --vision
    feature_cache_mb: int | None = None  # SMOLVLM_FEATURE_CACHE_MB: as --feature-cache-mb
    # SMOLVLM_COMPILE: as --compile; off by default on ZeroGPU, where each request's GPU may compile again
    compile: str = "auto"
    max_frames: int = DEFAULT_MAX_FRAMES  # SMOLVLM_MAX_FRAMES: the settings' default
    max_new_tokens: int = 512  # SMOLVLM_MAX_NEW_TOKENS: the settings' default
    concurrency: int = 1  # SMOLVLM_CONCURRENCY: requests running the model at once (one GPU: 1)
    queue_size: int = 16  # SMOLVLM_QUEUE_SIZE: requests waiting beyond that; more are told "busy"
    max_file_size: str = "200mb"  # SMOLVLM_MAX_FILE_SIZE: larger uploads are refused
    gpu_seconds: int = 120  # SMOLVLM_GPU_SECONDS: the most ZeroGPU time one request may reserve
    # SMOLVLM_KEPT_REQUESTS: the frames and downloads of this many finished requests stay on the disk
    # (those of requests in flight always do)
    kept_requests: int = 64
    # SMOLVLM_PRELOAD: load every model choice at start-up; on by default on ZeroGPU, which requires it
    preload: bool = False
    mcp_server: bool = False  # SMOLVLM_MCP: also serve the API as an MCP server (the demo extra has mcp)
    # SMOLVLM_SPEECH_MODEL: the Whisper checkpoint the Listen setting uses (auto: as --speech-model auto)
    speech_model: str = "auto"
    examples_dir: Path = field(default=EXAMPLES_DIR)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DemoConfig:
        """The defaults, overridden by whichever SMOLVLM_* variables are set."""
        env = os.environ if env is None else env
        model = env.get("SMOLVLM_MODEL", DEFAULT_MODEL)
        choices = tuple(
            m.strip() for m in env.get("SMOLVLM_MODELS", ",".join(MODELS)).split(",") if m.strip()
        )
        return cls(
            model=model,
            models=choices if model in choices else (model, *choices),
            device=env.get("SMOLVLM_DEVICE", "auto"),
            dtype=env.get("SMOLVLM_DTYPE", "auto"),
            attention=env.get("SMOLVLM_ATTENTION", "auto"),
            vision=env.get("SMOLVLM_VISION", "auto"),
            feature_cache_mb=int(env["SMOLVLM_FEATURE_CACHE_MB"])
            if env.get("SMOLVLM_FEATURE_CACHE_MB")
            else None,
            compile=env.get("SMOLVLM_COMPILE", "off" if on_zerogpu(env) else "auto"),
            max_frames=int(env.get("SMOLVLM_MAX_FRAMES", DEFAULT_MAX_FRAMES)),
            max_new_tokens=int(env.get("SMOLVLM_MAX_NEW_TOKENS", 512)),
            concurrency=int(env.get("SMOLVLM_CONCURRENCY", 1)),
            queue_size=int(env.get("SMOLVLM_QUEUE_SIZE", 16)),
            max_file_size=env.get("SMOLVLM_MAX_FILE_SIZE", "200mb"),
            gpu_seconds=int(env.get("SMOLVLM_GPU_SECONDS", 120)),
            kept_requests=int(env.get("SMOLVLM_KEPT_REQUESTS", 64)),
            preload=_flag(env.get("SMOLVLM_PRELOAD", "1" if on_zerogpu(env) else "0")),
            mcp_server=_flag(env.get("SMOLVLM_MCP", "0")),
            speech_model=env.get("SMOLVLM_SPEECH_MODEL", "auto"),
        )

    def speech_options(self, listen: bool) -> SpeechOptions:
        """How the Listen setting transcribes: each video's speech before the question, or nothing."""
        return SpeechOptions(mode="prompt" if listen else "off", speech_model=self.speech_model)

    def model_options(self, name: str | None = None) -> ModelOptions:
        """How a model is loaded here: `name` (default: the first), on this device, dtype and attention."""
        return ModelOptions(
            name or self.model,
            device=self.device,
            dtype=self.dtype,
            attention=self.attention,
            vision=self.vision,
            feature_cache_mb=self.feature_cache_mb,
            compile=self.compile,
        )


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")
