"""The known SmolVLM2 checkpoints, a `ModelSpec` each: what the front ends know of a model without loading it.

A new size is one record in `MODELS`. The demo's choices, `smolvlm-video info`, the README's table (a test
holds it against this one) and the ZeroGPU sizing all read it. Where a checkpoint is loaded, its own config
wins: `LoadedModel.frame_side` comes from its processor. A Hub id or a folder outside the registry has no
spec, and only its config is read. Free of torch, so front ends load fast.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """One known checkpoint, as its model card and its config state it."""

    name: str  # the short name --model takes: "256M"
    hub_id: str
    frame_side: int  # pixels: the vision encoder's input side (the processor's video_sampling.video_size)
    tokens_per_frame: int  # image tokens each frame takes in the prompt (after the pixel shuffle)
    context_length: int  # tokens: the text model's max_position_embeddings
    # ZeroGPU's reservation, from benchmarks/gpu.py on an NVIDIA H200 (see demo/zerogpu.py):
    gpu_seconds_per_frame: float  # vision encoder and prefill, per frame
    gpu_seconds_per_token: float  # per new token


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("256M", "HuggingFaceTB/SmolVLM2-256M-Video-Instruct", 512, 64, 8192, 0.05, 0.065),
        ModelSpec("500M", "HuggingFaceTB/SmolVLM2-500M-Video-Instruct", 512, 64, 8192, 0.05, 0.065),
        ModelSpec("2.2B", "HuggingFaceTB/SmolVLM2-2.2B-Instruct", 384, 81, 16384, 0.1, 0.07),
    )
}

# The default bound, in MB, of a model's cache of vision features (`model.features`), by device type:
# about 50 videos of 64 frames for the 256M model in float32 on the CPU (9.4 MB each), more on a GPU.
FEATURE_CACHE_MB = {"cpu": 512, "mps": 512, "cuda": 2048}

# What one vision encoder call may hold of attention scores, in MB, by device type: a video's frames go
# through the encoder in chunks of as many frames as fit (`loading.vision_chunk`), so a call holds a chunk's
# activations, not a whole video's. benchmarks/vision_chunks.py measures speed and peak by chunk size: on the
# CPU (256M shape, bfloat16, 64 frames) 8 to 16 frames a call (25 MB of scores a frame) took 0.89 to 0.90 s a
# frame against 0.97 s for 64, with a lower peak; the tiny test checkpoint's frames are so small that a whole
# video is one call, as before. The CUDA budget is to be measured on a GPU.
VISION_CALL_MB = {"cpu": 256, "mps": 256, "cuda": 512}


def model_spec(name: str) -> ModelSpec | None:
    """The spec of a registry name ("256M") or of a known checkpoint's Hub id; None for anything else."""
    if name in MODELS:
        return MODELS[name]
    return next((spec for spec in MODELS.values() if spec.hub_id == name), None)


def resolve_model_id(name: str) -> str:
    """A registry name ("256M", "500M", "2.2B") to its Hub id; anything else is returned as given."""
    spec = MODELS.get(name)
    return spec.hub_id if spec else name
