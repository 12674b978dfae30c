"""Load a SmolVLM2 checkpoint and its processor on the best device.

>>> from smolvlm_video import load_model
>>> model = load_model("500M")            # a registry name, a Hub id, or a local folder
>>> model.device, model.dtype, model.frame_side
>>> model = load(ModelOptions("500M", dtype="float32"))  # the same, from the options the front ends build
>>> model, sampling = load_fitted(ModelOptions("500M"), SamplingOptions(fps=2))  # and a job fitted to it
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import ModelLoadError
from ..options import DEFAULT_MODEL, ModelOptions, SamplingOptions
from .devices import DeviceChoice, choose
from .features import FeatureCache
from .registry import MODELS, VISION_CALL_MB, resolve_model_id

logger = logging.getLogger(__name__)

# How long the Hub may take to answer one small request before it counts as unreachable. A working
# connection answers in well under a second; HF_HUB_ETAG_TIMEOUT gives a slow one longer.
HUB_PROBE_SECONDS = 3.0

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "DeviceChoice",
    "LoadedModel",
    "choose",
    "load",
    "load_fitted",
    "load_model",
    "resolve_model_id",
]


@dataclass
class LoadedModel:
    """A model with its processor, loaded once and reused for every prompt."""

    model: Any
    processor: Any
    model_id: str
    revision: str | None
    device: torch.device
    dtype: torch.dtype
    attention: str = "sdpa"  # transformers' attn_implementation
    # "batched": one vision encoder call for all of a batch's frames; "per-chat": one call per chat.
    # Set on load for the device (see `smolvlm_video.model.devices`); change it at any time.
    vision: str = "per-chat"
    # Whether a batch engine's decoding threads make each window's pixels ahead (see `devices`). Set on
    # load for the device; change it at any time: the prompt and the answer stay the same.
    prepare_ahead: bool = False
    why: tuple[
        str, ...
    ] = ()  # why this device, dtype, attention, vision, preparation and compiling (DeviceChoice.why)
    # The vision features of recent media, by content (`features`); None: the device's default bound.
    features: FeatureCache = None  # type: ignore[assignment]
    # Decode with a compiled step and a static cache (`model.compiling`); set on load, change it at any time.
    compiled: bool = False
    # The most frames a vision encoder call takes (`features.encode_frames`); None: the device's default.
    vision_chunk: int = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.features is None:
            self.features = FeatureCache.for_device(self.device)
        if self.vision_chunk is None:
            self.vision_chunk = vision_chunk(self.model.config, self.device, self.dtype)

    @property
    def frame_side(self) -> int:
        """The side in pixels the vision encoder sees (512 for 256M/500M, 384 for 2.2B)."""
        return processor_frame_side(self.processor)

    @property
    def tokens_per_frame(self) -> int:
        return int(self.processor.image_seq_len)

    @property
    def context_length(self) -> int:
        """The most tokens the language model takes, prompt and answer together (its position range)."""
        return int(self.model.config.text_config.max_position_embeddings)


def vision_chunk(config: Any, device: torch.device, dtype: torch.dtype) -> int:
    """The most frames one vision encoder call takes: as many as fit the device's `VISION_CALL_MB` of
    attention scores (heads x patches^2 a frame, in `dtype`), at least one."""
    vision = config.vision_config
    patches = (vision.image_size // vision.patch_size) ** 2
    scores = vision.num_attention_heads * patches**2 * torch.finfo(dtype).bits // 8
    budget = VISION_CALL_MB.get(device.type, VISION_CALL_MB["cpu"]) << 20
    return max(1, budget // scores)


def _load_error(model_id: str, error: Exception, unreachable: str | None = None) -> ModelLoadError:
    if os.path.isdir(model_id):
        return ModelLoadError(f"The folder {model_id} is not a loadable SmolVLM checkpoint: {error}")
    reason = "the Hugging Face Hub could not be reached or lacks it"
    if unreachable:
        reason = (
            f"the Hugging Face Hub could not be reached ({unreachable}; on a slow connection, set "
            f"HF_HUB_ETAG_TIMEOUT to wait longer than {HUB_PROBE_SECONDS:g} s)"
        )
    return ModelLoadError(
        f"Could not load the model {model_id!r}: {reason}, and it is not in the local cache "
        f"({type(error).__name__}). Connect to the internet once to download it, or pass the path of a local "
        "checkpoint folder as the model (e.g. --model ./SmolVLM2-256M-Video-Instruct)."
    )


def hub_unreachable(model_id: str, revision: str | None = None) -> str | None:
    """Why the Hub cannot serve this model right now, from one request without retries; None if it can.

    Any HTTP answer counts as reachable (a missing, gated or private model is for from_pretrained to
    report, with the user's token). None too for a local folder and under HF_HUB_OFFLINE, where nothing is
    asked of the Hub. The request waits HUB_PROBE_SECONDS, or HF_HUB_ETAG_TIMEOUT where that is set.
    """
    from huggingface_hub import constants, hf_hub_url
    from huggingface_hub.utils import get_session

    if os.path.isdir(model_id) or constants.HF_HUB_OFFLINE:
        return None
    timeout = float(os.environ.get("HF_HUB_ETAG_TIMEOUT", HUB_PROBE_SECONDS))
    url = hf_hub_url(model_id, "config.json", revision=revision)
    try:
        get_session().head(url, timeout=timeout, follow_redirects=False)
    except Exception as error:  # no answer at all (refused, timed out, no route): the reason goes on
        return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return None


def _pretrained_kwargs(model_id: str, revision: str | None) -> tuple[dict[str, Any], str | None]:
    """from_pretrained's source arguments: the local cache alone when the Hub does not answer, and why.

    Without this, each of the checkpoint's files is asked of an unreachable Hub five times with backoff
    (minutes) before the cache is tried.
    """
    unreachable = hub_unreachable(model_id, revision)
    if unreachable:
        logger.warning("The Hugging Face Hub did not answer (%s); loading %s from the local cache only.",
                       unreachable, model_id)  # fmt: skip
    return {"revision": revision, "local_files_only": bool(unreachable)}, unreachable


def processor_frame_side(processor: Any) -> int:
    """The frame side a SmolVLM processor resizes video frames to."""
    return int(processor.video_processor.max_image_size["longest_edge"])


def load_frame_side(name: str = DEFAULT_MODEL, revision: str | None = None) -> int:
    """A checkpoint's frame side, from its processor alone (no weights are loaded)."""
    from transformers import AutoProcessor

    model_id = resolve_model_id(name)
    source, unreachable = _pretrained_kwargs(model_id, revision)
    try:
        return processor_frame_side(AutoProcessor.from_pretrained(model_id, **source))
    except (OSError, ValueError) as error:
        raise _load_error(model_id, error, unreachable) from error


def load_model(
    name: str = DEFAULT_MODEL,
    revision: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    attn_implementation: str | None = None,
    device_map: str | dict[str, Any] | None = None,
    vision: str = "auto",
    feature_cache_mb: int | None = None,
    compile: str = "auto",
) -> LoadedModel:
    """Load a checkpoint (registry name, Hub id or local path) and its processor.

    Device, dtype and attention ("auto" or None: chosen for the device, see `smolvlm_video.model.devices`).
    `vision` ("auto", "batched", "per-chat"): how the vision encoder takes a batch's frames.
    `compile` ("auto", "on", "off"): decode with a compiled step and a static cache (`model.compiling`).
    `device_map` ("auto", "balanced", ...) spreads a model over several GPUs or offloads it through
    accelerate; without it the whole model goes to `device`. `feature_cache_mb` bounds the cache of
    recent media's vision features (`features.FeatureCache`; None: the device's default, 0: none).
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model_id = resolve_model_id(name)
    choice = choose(device, dtype, attn_implementation or "auto", vision, compile)
    source, unreachable = _pretrained_kwargs(model_id, revision)
    try:
        processor = AutoProcessor.from_pretrained(model_id, **source)
        model = AutoModelForImageTextToText.from_pretrained(
            model_id,
            dtype=choice.dtype,
            attn_implementation=choice.attention,
            device_map=device_map,
            **source,
        )
    except (OSError, ValueError) as error:
        raise _load_error(model_id, error, unreachable) from error
    if device_map is None:
        model = model.to(choice.device)
    model.eval()
    return LoadedModel(
        model,
        processor,
        model_id,
        revision,
        choice.device,
        choice.dtype,
        choice.attention,
        choice.vision,
        choice.prepare_ahead,
        choice.why,
        FeatureCache.for_device(choice.device, feature_cache_mb),
        choice.compile,
    )


def load(options: ModelOptions) -> LoadedModel:
    """Load the model that `options` name, where and how they say (see `load_model`)."""
    return load_model(
        options.name,
        options.revision,
        options.device,
        options.dtype,
        options.attention,
        vision=options.vision,
        feature_cache_mb=options.feature_cache_mb,
        compile=options.compile,
    )


def load_fitted(
    options: ModelOptions, sampling: SamplingOptions, loader: Callable[[ModelOptions], LoadedModel] = load
) -> tuple[LoadedModel, SamplingOptions]:
    """The model that `options` name, and `sampling` fitted to it: every front end starts a job here.

    Fitted: frames are decoded at the model's vision-encoder side (unless `sampling` sets its own),
    so the processor gets them at the size it works at. `loader` gets the model: `load` by default,
    or a cache's, or one that hands back a model already in memory.
    """
    model = loader(options)
    return model, sampling.for_frame_side(model.frame_side)
