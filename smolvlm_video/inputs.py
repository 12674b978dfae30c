"""Turn chats into model inputs: our prompt text, the processor's pixels, one padded batch.

Pixels come from the checkpoint's own image and video processors (so resizing and normalisation
are the model's); the text comes from `prompts`, so every video states its own frame count and
timestamps even in a batch of videos of different lengths. Frames we sampled go in as arrays with
`do_sample_frames=False`: the processor never opens a file and never samples again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import BatchFeature

from .prompts import (
    TRAINED_STRINGS,
    Message,
    PromptStrings,
    chat_media,
    image_tokens,
    render_chat,
    video_tokens,
)
from .video import SampledVideo


def _encode_media(processor: Any, item: Any, strings: PromptStrings) -> tuple[str, dict[str, torch.Tensor]]:
    """The prompt text and pixel tensors (batch 1) of one image or video."""
    seq_len = processor.image_seq_len
    if isinstance(item, SampledVideo):
        out = processor.video_processor(videos=[item.frames], do_sample_frames=False, return_tensors="pt")
        text = video_tokens(item.timestamps, item.info.duration, seq_len, strings)
    else:
        out = processor.image_processor(
            [[item.convert("RGB")]], return_row_col_info=True, return_tensors="pt"
        )
        text = image_tokens(out["rows"][0][0], out["cols"][0][0], seq_len)
    return text, {"pixel_values": out["pixel_values"], "pixel_attention_mask": out["pixel_attention_mask"]}


def _stack_padded(rows: list[list[torch.Tensor]], template: torch.Tensor) -> torch.Tensor:
    """One (batch, images, ...) tensor from each chat's image tensors, padded with all-zero images.

    The model drops all-zero images, so a chat with fewer images (or none) loses nothing.
    """
    joined = [torch.cat(row, dim=1) if row else template.new_zeros(1, 0, *template.shape[2:]) for row in rows]
    most = max(t.shape[1] for t in joined)
    return torch.cat([torch.cat([t, t.new_zeros(1, most - t.shape[1], *t.shape[2:])], dim=1) for t in joined])


def build_inputs(
    processor: Any, chats: Sequence[Sequence[Message]], strings: PromptStrings = TRAINED_STRINGS
) -> BatchFeature:
    """Token ids, attention mask and pixels for a batch of chats, left-padded for generation."""
    texts, pixels, masks = [], [], []
    for messages in chats:
        encoded = [_encode_media(processor, item, strings) for item in chat_media(messages)]
        texts.append(render_chat(messages, [text for text, _ in encoded]))
        pixels.append([tensors["pixel_values"] for _, tensors in encoded])
        masks.append([tensors["pixel_attention_mask"] for _, tensors in encoded])
    batch = processor.tokenizer(texts, padding=True, padding_side="left", return_tensors="pt")
    data = dict(batch)
    if any(pixels):
        first = next(i for i, row in enumerate(pixels) if row)  # a chat with media gives the shapes
        data["pixel_values"] = _stack_padded(pixels, pixels[first][0])
        data["pixel_attention_mask"] = _stack_padded(masks, masks[first][0])
    return BatchFeature(data)
