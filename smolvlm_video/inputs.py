"""Turn chats into model inputs: our prompt text, the processor's pixels, one padded batch.

Pixels come from the checkpoint's own image and video processors (so resizing and normalisation
are the model's); the text comes from `prompts`, so every video states its own frame count and
timestamps even in a batch of videos of different lengths. Frames we sampled go in as arrays with
`do_sample_frames=False`: the processor never opens a file and never samples again.

A video's pixels can also be made ahead of time, off the thread that runs the model
(`prepare_video`): in the model's dtype and, for a GPU, in pinned memory, so the copy to the GPU
runs without blocking and the next batch's preprocessing overlaps the current batch's generation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class PreparedVideo:
    """A sampled video with the model's pixel tensors already made: put it in a chat in its place."""

    video: SampledVideo
    pixel_values: torch.Tensor  # (1, frames, 3, side, side) in the model's dtype
    pixel_attention_mask: torch.Tensor  # (1, frames, side, side)


def video_pixels(processor: Any, video: SampledVideo) -> dict[str, torch.Tensor]:
    """The processor's pixel tensors (batch 1) for a video's frames."""
    out = processor.video_processor(videos=[video.frames], do_sample_frames=False, return_tensors="pt")
    return {"pixel_values": out["pixel_values"], "pixel_attention_mask": out["pixel_attention_mask"]}


def prepare_video(processor: Any, video: SampledVideo, dtype: torch.dtype, pin: bool) -> PreparedVideo:
    """A video's pixels made now, in `dtype`, in pinned memory if `pin` (only where CUDA is)."""
    pixels = video_pixels(processor, video)
    values, mask = pixels["pixel_values"].to(dtype), pixels["pixel_attention_mask"]
    if pin:
        values, mask = values.pin_memory(), mask.pin_memory()
    return PreparedVideo(video, values, mask)


def _encode_media(processor: Any, item: Any, strings: PromptStrings) -> tuple[str, dict[str, torch.Tensor]]:
    """The prompt text and pixel tensors (batch 1) of one image or video."""
    seq_len = processor.image_seq_len
    if isinstance(item, PreparedVideo):
        text = video_tokens(item.video.timestamps, item.video.info.duration, seq_len, strings)
        return text, {"pixel_values": item.pixel_values, "pixel_attention_mask": item.pixel_attention_mask}
    if isinstance(item, SampledVideo):
        out = video_pixels(processor, item)
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
    processor: Any,
    chats: Sequence[Sequence[Message]],
    strings: PromptStrings = TRAINED_STRINGS,
    device: torch.device | None = None,
) -> BatchFeature:
    """Token ids, attention mask and pixels for a batch of chats, left-padded for generation.

    With a `device`, every tensor goes there, each medium's pixels before they are stacked: pixels in
    pinned memory (`prepare_video`) are copied without blocking, and the stacking runs on the device.
    """
    texts, pixels, masks = [], [], []
    for messages in chats:
        encoded = [_encode_media(processor, item, strings) for item in chat_media(messages)]
        texts.append(render_chat(messages, [text for text, _ in encoded]))
        pixels.append([_to(tensors["pixel_values"], device) for _, tensors in encoded])
        masks.append([_to(tensors["pixel_attention_mask"], device) for _, tensors in encoded])
    batch = processor.tokenizer(texts, padding=True, padding_side="left", return_tensors="pt")
    data = {name: _to(tensor, device) for name, tensor in batch.items()}
    if any(pixels):
        first = next(i for i, row in enumerate(pixels) if row)  # a chat with media gives the shapes
        data["pixel_values"] = _stack_padded(pixels, pixels[first][0])
        data["pixel_attention_mask"] = _stack_padded(masks, masks[first][0])
    return BatchFeature(data)


def _to(tensor: torch.Tensor, device: torch.device | None) -> torch.Tensor:
    if device is None:
        return tensor
    return tensor.to(device, non_blocking=tensor.is_pinned())
