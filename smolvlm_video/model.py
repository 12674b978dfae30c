"""Load a SmolVLM2 checkpoint and its processor on the best device.

>>> from smolvlm_video import load_model
>>> model = load_model("500M")            # a registry name, a Hub id, or a local folder
>>> model.device, model.dtype, model.frame_side
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch

from .errors import ModelLoadError, OptionsError
from .registry import DEFAULT_MODEL, DEVICES, MODELS, resolve_model_id

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "LoadedModel",
    "load_model",
    "pick_device",
    "pick_dtype",
    "resolve_model_id",
]

DTYPES = {"auto": None, "bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


@dataclass
class LoadedModel:
    """A model with its processor, loaded once and reused for every prompt."""

    model: Any
    processor: Any
    model_id: str
    revision: str | None
    device: torch.device
    dtype: torch.dtype

    @property
    def frame_side(self) -> int:
        """The side in pixels the vision encoder sees (512 for 256M/500M, 384 for 2.2B)."""
        return processor_frame_side(self.processor)

    @property
    def tokens_per_frame(self) -> int:
        return int(self.processor.image_seq_len)


def pick_device(device: str = "auto") -> torch.device:
    """CUDA, then Apple MPS, then the CPU; or the device asked for, if this machine has it."""
    if device not in DEVICES and not device.startswith("cuda:"):
        raise OptionsError(f"device must be one of {', '.join(DEVICES)} or cuda:N, got {device!r}.", "device")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise OptionsError(
            "device 'cuda' was asked for, but torch sees no CUDA GPU here; use --device cpu.", "device"
        )
    if device == "mps" and not torch.backends.mps.is_available():
        raise OptionsError(
            "device 'mps' was asked for, but this machine has no Apple GPU; use --device cpu.", "device"
        )
    return torch.device(device)


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """bfloat16 on CUDA GPUs that support it, float16 on older ones and on MPS, float32 on the CPU."""
    if dtype not in DTYPES:
        raise OptionsError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}.", "dtype")
    if DTYPES[dtype] is not None:
        return DTYPES[dtype]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def pick_attention(device: torch.device, dtype: torch.dtype) -> str:
    """flash_attention_2 on CUDA in half precision where installed, else PyTorch's sdpa."""
    half = dtype in (torch.float16, torch.bfloat16)
    if device.type == "cuda" and half and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


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
) -> LoadedModel:
    """Load a checkpoint (registry name, Hub id or local path) and its processor.

    `device_map` ("auto", "balanced", ...) spreads a model over several GPUs or offloads it through
    accelerate; without it the whole model goes to `device`.
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model_id = resolve_model_id(name)
    target = pick_device(device)
    torch_dtype = pick_dtype(dtype, target)
    attention = attn_implementation or pick_attention(target, torch_dtype)
    try:
        processor = AutoProcessor.from_pretrained(model_id, revision=revision)
        model = AutoModelForImageTextToText.from_pretrained(
            model_id,
            revision=revision,
            dtype=torch_dtype,
            attn_implementation=attention,
            device_map=device_map,
        )
    except (OSError, ValueError) as error:
        raise _load_error(model_id, error) from error
    if device_map is None:
        model = model.to(target)
    model.eval()
    return LoadedModel(model, processor, model_id, revision, target, torch_dtype)
