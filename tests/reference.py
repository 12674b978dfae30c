"""transformers' own pipeline as the reference: SmolVLMProcessor's inputs and model.generate's token ids.

Our chats go in as the processor's conversation dicts, with the same frames, timestamps and text, so
any difference in prompt text, pixels or placement of the image features shows up as a different id.
`Recorder` catches the token ids that our own code paths feed to and get from the model's generate().
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image
from transformers import BatchFeature
from transformers.video_utils import VideoMetadata

from smolvlm_video.model.generate import generate_kwargs
from smolvlm_video.model.prompts import Message
from smolvlm_video.options import GenerationOptions
from smolvlm_video.video import SampledVideo


def conversation(messages: Sequence[Message]) -> tuple[list[dict[str, Any]], list[Image.Image], list[Any]]:
    """The processor's conversation for a chat of ours, with its images and videos in order."""
    turns, images, videos = [], [], []
    for message in messages:
        content = []
        for part in message.content:
            if isinstance(part, str):
                content.append({"type": "text", "text": part})
            elif isinstance(part, SampledVideo):
                content.append({"type": "video"})
                videos.append(part)
            else:
                content.append({"type": "image"})
                images.append(part)
        turns.append({"role": message.role, "content": content})
    return turns, images, videos


def processor_inputs(processor: Any, messages: Sequence[Message]) -> BatchFeature:
    """SmolVLMProcessor's inputs for one chat: its chat template, then its own text and pixel processing."""
    turns, images, videos = conversation(messages)
    text = processor.apply_chat_template(turns, add_generation_prompt=True)
    kwargs: dict[str, Any] = {}
    if videos:
        kwargs["video_metadata"] = [
            VideoMetadata(
                total_num_frames=v.info.frame_count,
                fps=v.info.fps,
                duration=v.info.duration,
                frames_indices=list(v.indices),
            )
            for v in videos
        ]
        kwargs.update(videos=[v.frames for v in videos], do_sample_frames=False)
    return processor(text=text, images=[images] if images else None, return_tensors="pt", **kwargs)


@dataclass(frozen=True)
class Tokens:
    """One chat's generation: the prompt's token ids (no padding) and the new ones."""

    prompt: list[int]
    new: list[int]


def reference_tokens(model: Any, messages: Sequence[Message], options: GenerationOptions) -> Tokens:
    """`model.generate(**processor(...))` on one chat: the processor's prompt ids and the generated ids."""
    inputs = processor_inputs(model.processor, messages).to(model.dtype)
    kwargs = {"pad_token_id": model.processor.tokenizer.pad_token_id, **generate_kwargs(options)}
    with torch.inference_mode():
        output = model.model.generate(**inputs, **kwargs)
    width = inputs["input_ids"].shape[1]
    return Tokens(inputs["input_ids"][0].tolist(), output[0, width:].tolist())


def reference_text(model: Any, tokens: Tokens) -> str:
    """The answer as our code decodes it: special tokens dropped, stripped."""
    return model.processor.tokenizer.decode(tokens.new, skip_special_tokens=True).strip()


@dataclass
class Recorder:
    """Every row that went through the model class's generate() while recording, in call order."""

    rows: list[Tokens] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextlib.contextmanager
    def watching(self, model_class: type, monkeypatch: Any) -> Iterator[Recorder]:
        """Record the generate() calls of every model of this class, wherever it was loaded."""
        real = model_class.generate

        def generate(vlm: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
            output = real(vlm, *args, **kwargs)
            ids, mask = kwargs["input_ids"], kwargs["attention_mask"]
            width = ids.shape[1]
            with self.lock:
                for row in range(ids.shape[0]):
                    prompt = ids[row][mask[row].bool()].tolist()  # left padding removed
                    self.rows.append(Tokens(prompt, output[row, width:].tolist()))
            return output

        with monkeypatch.context() as patch:
            patch.setattr(model_class, "generate", generate)
            yield self
