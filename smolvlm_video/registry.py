"""The known SmolVLM2 checkpoints and the device and dtype names; free of torch, so front ends load fast."""

from __future__ import annotations

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


def resolve_model_id(name: str) -> str:
    """A registry name ("256M", "500M", "2.2B") to its Hub id; anything else is returned as given."""
    return MODELS.get(name, name)
