"""Load a SmolVLM2 checkpoint and its processor on the best device.

>>> from smolvlm_video import load_model
>>> model = load_model("500M")            # a registry name, a Hub id, or a local folder
>>> model.device, model.dtype, model.frame_side
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch

from .devices import DeviceChoice, choose
from .errors import ModelLoadError
from .registry import DEFAULT_MODEL, MODELS, resolve_model_id

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "DeviceChoice",
    "LoadedModel",
    "choose",
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
    # Set on load for the device (see `smolvlm_video.devices`); change it at any time.
    vision: str = "per-chat"
    # Whether a batch engine's decoding threads make each window's pixels ahead (`smolvlm_video.devices`).
    # Set on load for the device; change it at any time: the prompt and the answer stay the same.
    prepare_ahead: bool = False
    why: tuple[str, ...] = ()  # why this device, dtype, attention, vision and preparation (DeviceChoice.why)

    @property
    def frame_side(self) -> int:
        """The side in pixels the vision encoder sees (512 for 256M/500M, 384 for 2.2B)."""
        return processor_frame_side(self.processor)

    @property
    def tokens_per_frame(self) -> int:
        return int(self.processor.image_seq_len)


def _load_error(model_id: str, error: Exception) -> ModelLoadError:
    if os.path.isdir(model_id):
        return ModelLoadError(f"The folder {model_id} is not a loadable SmolVLM checkpoint: {error}")
    return ModelLoadError(
        f"Could not load the model {model_id!r}: the Hugging Face Hub could not be reached or the model "
        "is not "
        f"in the local cache ({type(error).__name__}). Connect to the internet once to download it, or pass "
        "the path of a local checkpoint folder as the model (e.g. --model ./SmolVLM2-256M-Video-Instruct)."
    )


def processor_frame_side(processor: Any) -> int:
    """The frame side a SmolVLM processor resizes video frames to."""
    return int(processor.video_processor.max_image_size["longest_edge"])


def load_frame_side(name: str = DEFAULT_MODEL, revision: str | None = None) -> int:
    """A checkpoint's frame side, from its processor alone (no weights are loaded)."""
    from transformers import AutoProcessor

    model_id = resolve_model_id(name)
    try:
        return processor_frame_side(AutoProcessor.from_pretrained(model_id, revision=revision))
    except (OSError, ValueError) as error:
        raise _load_error(model_id, error) from error


def load_model(
    name: str = DEFAULT_MODEL,
    revision: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    attn_implementation: str | None = None,
    device_map: str | dict[str, Any] | None = None,
    vision: str = "auto",
) -> LoadedModel:
    """Load a checkpoint (registry name, Hub id or local path) and its processor.

    Device, dtype and attention ("auto" or None: chosen for the device, see `smolvlm_video.devices`).
    `vision` ("auto", "batched", "per-chat"): how the vision encoder takes a batch's frames.
    `device_map` ("auto", "balanced", ...) spreads a model over several GPUs or offloads it through
    accelerate; without it the whole model goes to `device`.
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model_id = resolve_model_id(name)
    choice = choose(device, dtype, attn_implementation or "auto", vision)
    try:
        processor = AutoProcessor.from_pretrained(model_id, revision=revision)
        model = AutoModelForImageTextToText.from_pretrained(
            model_id,
            revision=revision,
            dtype=choice.dtype,
            attn_implementation=choice.attention,
            device_map=device_map,
        )
    except (OSError, ValueError) as error:
        raise _load_error(model_id, error) from error
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
    )
