"""The known SmolVLM2 checkpoints and the device and dtype names; free of torch, so front ends load fast."""

from __future__ import annotations

from ..errors import OptionsError

MODELS = {
    "256M": "HuggingFaceTB/SmolVLM2-256M-Video-Instruct",
    "500M": "HuggingFaceTB/SmolVLM2-500M-Video-Instruct",
    "2.2B": "HuggingFaceTB/SmolVLM2-2.2B-Instruct",
}
DEFAULT_MODEL = "256M"
DEVICES = ("auto", "cuda", "mps", "cpu")
DTYPE_NAMES = ("auto", "bfloat16", "float16", "float32")
ATTENTIONS = ("auto", "sdpa", "flash_attention_2", "eager")  # transformers' attn_implementation names
# How the vision encoder takes a batch's frames: all chats in one call, or one chat's per call
VISION_MODES = ("auto", "batched", "per-chat")
# The default bound, in MB, of a model's cache of vision features (`model.features`), by device type:
# about 50 videos of 64 frames for the 256M model in float32 on the CPU (9.4 MB each), more on a GPU.
FEATURE_CACHE_MB = {"cpu": 512, "mps": 512, "cuda": 2048}


def resolve_model_id(name: str) -> str:
    """A registry name ("256M", "500M", "2.2B") to its Hub id; anything else is returned as given."""
    return MODELS.get(name, name)


def check_runtime(device: str, dtype: str, attention: str, vision: str = "auto") -> None:
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
