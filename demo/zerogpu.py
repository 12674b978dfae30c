"""ZeroGPU: a GPU for each request, reserved for as long as that request needs.

On a ZeroGPU Space the model is placed at start-up (`DemoConfig.preload`), and each answer runs
under `@spaces.GPU` with a duration computed from the request: the model, how many frames and
images it sees, and how many tokens it may write. A short request asks for less time, so it waits
less in ZeroGPU's queue and spends less of the visitor's quota; a long one is not cut off.

The costs below come from `benchmarks/gpu.py` on an NVIDIA H200, the card ZeroGPU slices, with random
weights of each shape in bfloat16 (one 64-frame chat at batch 1). A new token took 0.031 and 0.058 s
(256M, two runs), 0.057 s (500M) and 0.059 s (2.2B): at these sizes generation waits on kernel launches
(the GPU was busy under 30% of the time), so the time per token barely follows the size and varies from
run to run; the costs below round the slowest up. A frame's share was too small to tell from the noise
(under 0.02 s for every shape), so the per-frame costs stay at generous estimates. ZeroGPU's slice of the
card has not timed them: MARGIN covers the difference. The figures are each model's `ModelSpec`
(`gpu_seconds_per_frame`, `gpu_seconds_per_token`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from smolvlm_video.batch.captioning import CaptionJob
from smolvlm_video.batch.prefetch import PlannedClip
from smolvlm_video.model.media import chat_media
from smolvlm_video.model.prompts import Message
from smolvlm_video.model.registry import MODELS, ModelSpec, model_spec
from smolvlm_video.video import SampledVideo

IMAGE_FRAMES = 17  # an image is split into at most 4 x 4 tiles plus a global view, each a frame's cost
SETUP_SECONDS = 5.0  # taking the GPU and warming up, once a request
MARGIN = 1.5  # the estimate times this, so a slow request still finishes
MIN_SECONDS = 15  # no request asks for less
# Transcribing a minute of video with the Listen setting: an estimate, not yet measured on ZeroGPU's card
# (`benchmarks/speech.py` measures it where CUDA is). MARGIN and MIN_SECONDS cover a short request; a long
# one that runs over is cut off by ZeroGPU, and the person sees the error.
SPEECH_SECONDS_PER_MINUTE = 6.0


def request_seconds(model: str, frames: int, max_new_tokens: int, most: int) -> int:
    """The GPU seconds to reserve for one answer: the estimate with margin, within [MIN_SECONDS, most].

    The costs are the model's `ModelSpec`'s; a checkpoint outside the registry is costed as the dearest one.
    """
    spec = model_spec(model) or _dearest()
    work = frames * spec.gpu_seconds_per_frame + max_new_tokens * spec.gpu_seconds_per_token
    estimate = math.ceil(MARGIN * (SETUP_SECONDS + work))
    return max(MIN_SECONDS, min(most, estimate))


def speech_seconds(seconds: float, most: int) -> int:
    """The GPU seconds to reserve for transcribing `seconds` of video, with margin, within the bounds."""
    estimate = math.ceil(MARGIN * (SETUP_SECONDS + SPEECH_SECONDS_PER_MINUTE * seconds / 60))
    return max(MIN_SECONDS, min(most, estimate))


def _dearest() -> ModelSpec:
    return max(MODELS.values(), key=lambda spec: (spec.gpu_seconds_per_token, spec.gpu_seconds_per_frame))


def analysis_seconds(model: str, job: CaptionJob, clip: PlannedClip, most: int) -> int:
    """The GPU seconds to reserve for analyzing a planned clip: every window's frames and answers, and
    transcribing its span where the job listens."""
    frames = sum(len(plan.indices) for plan in clip.plans)
    answers = clip.window_count * len(job.questions)
    seconds = request_seconds(model, frames, answers * job.generation.max_new_tokens, most)
    if job.speech.on:
        span = sum(plan.window.end - plan.window.start for plan in clip.plans)
        seconds += speech_seconds(span, most)
    return min(most, seconds)


def chat_frames(messages: Sequence[Message]) -> int:
    """The frames a chat puts through the vision encoder: each video's, and the most an image can take."""
    return sum(
        item.frame_count if isinstance(item, SampledVideo) else IMAGE_FRAMES for item in chat_media(messages)
    )


def gpu_decorator(duration: int | Callable[..., int]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`spaces.GPU(duration=...)` where the `spaces` package is installed, else nothing.

    `duration` is seconds, or a function called with the decorated function's own arguments that
    returns them. Outside ZeroGPU hardware `spaces.GPU` changes nothing.
    """
    try:
        import spaces
    except ImportError:
        return lambda function: function
    return spaces.GPU(duration=duration)


def on_zerogpu(env: Mapping[str, str]) -> bool:
    """Whether this process runs on ZeroGPU hardware (the variable Spaces set there)."""
    return env.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "t", "true")
