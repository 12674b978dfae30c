"""Turn chats into model inputs: our prompt text, the processor's pixels, one padded batch.

Each medium's text and pixels come from `media` (the prompt text as the processor writes it, the pixels
from the checkpoint's own processors), so every video states its own frame count and timestamps even in a
batch of videos of different lengths; the chat's own text from `prompts`, turned into ids by `tokens`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import BatchFeature

from ..video import ModelPixels
from .media import chat_media, encode_medium, medium_key, medium_text
from .prompts import TRAINED_STRINGS, Message, PromptStrings, chat_segments
from .tokens import prompt_ids


def _stack_padded(rows: list[list[torch.Tensor]], template: torch.Tensor) -> torch.Tensor:
    """One (batch, images, ...) tensor from each chat's image tensors, padded with all-zero images.

    The model drops all-zero images, so a chat with fewer images (or none) loses nothing.
    """
    joined = [torch.cat(row, dim=1) if row else template.new_zeros(1, 0, *template.shape[2:]) for row in rows]
    most = max(t.shape[1] for t in joined)
    return torch.cat([torch.cat([t, t.new_zeros(1, most - t.shape[1], *t.shape[2:])], dim=1) for t in joined])


@dataclass
class ChatBatch:
    """A batch of chats as the model takes it: token ids, and each distinct medium's pixels once.

    `media` lists each chat's media by key (`media.medium_key`), in the order of their tokens;
    `pixels` holds one entry per distinct medium, but none for those the caller said it already has.
    """

    inputs: dict[str, torch.Tensor]  # input_ids and attention_mask, left-padded
    media: list[list[str]]
    pixels: dict[str, ModelPixels]


def chat_batch(
    processor: Any,
    chats: Sequence[Sequence[Message]],
    strings: PromptStrings = TRAINED_STRINGS,
    device: torch.device | None = None,
    known: Callable[[str], bool] = lambda key: False,
) -> ChatBatch:
    """Token ids for a batch of chats, left-padded for generation, and the pixels of their distinct media.

    A medium in several chats (the same object, or the same pixels) is processed once. `known(key)`
    says whether its vision features are already at hand, in which case no pixels are made for it (an
    image is still processed for its tiles, which its text names). Each medium has its own text: two
    windows with the same frames share pixels and features, not their timestamps.
    With a `device`, every tensor goes there: pinned pixels (`prepare_video`) are copied without blocking.
    Special-token strings in the chats' text stay text (`tokens.prompt_ids`).
    """
    keys: dict[int, str] = {}  # id(medium) -> its key: each medium object is hashed once
    texts: dict[int, str] = {}  # id(medium) -> the text that stands for it
    at_hand: dict[str, bool] = {}  # key -> whether its features are known (asked once a key)
    pixels: dict[str, ModelPixels] = {}
    prompts, media = [], []
    for messages in chats:
        row = []
        for item in chat_media(messages):
            key = keys[id(item)] = keys.get(id(item)) or medium_key(item)
            if id(item) not in texts:
                if key not in at_hand:
                    at_hand[key] = known(key)
                if at_hand[key] or key in pixels:
                    texts[id(item)] = medium_text(processor, item, strings)
                else:
                    encoded = encode_medium(processor, item, strings)
                    texts[id(item)] = encoded.text
                    values, mask = encoded.pixels.values, encoded.pixels.mask
                    pixels[key] = ModelPixels(_to(values, device), _to(mask, device))
            row.append((key, texts[id(item)]))
        prompts.append(chat_segments(messages, [text for _, text in row]))
        media.append([key for key, _ in row])
    ids = {"input_ids": prompt_ids(processor.tokenizer, prompts)}
    batch = processor.tokenizer.pad(ids, padding=True, padding_side="left", return_tensors="pt")
    return ChatBatch({name: _to(tensor, device) for name, tensor in batch.items()}, media, pixels)


def build_inputs(
    processor: Any,
    chats: Sequence[Sequence[Message]],
    strings: PromptStrings = TRAINED_STRINGS,
    device: torch.device | None = None,
) -> BatchFeature:
    """Token ids, attention mask and pixels for a batch of chats, as the processor gives them.

    The pixels are one (batch, images, ...) tensor, each chat's media in order, padded with all-zero
    images. Generation takes the `ChatBatch` itself, which holds a shared medium's pixels once.
    """
    batch = chat_batch(processor, chats, strings, device)
    data = dict(batch.inputs)
    values = [[batch.pixels[key].values for key in row] for row in batch.media]
    if any(values):
        masks = [[batch.pixels[key].mask for key in row] for row in batch.media]
        first = next(i for i, row in enumerate(values) if row)  # a chat with media gives the shapes
        data["pixel_values"] = _stack_padded(values, values[first][0])
        data["pixel_attention_mask"] = _stack_padded(masks, masks[first][0])
    return BatchFeature(data)


def _to(tensor: torch.Tensor, device: torch.device | None) -> torch.Tensor:
    if device is None:
        return tensor
    return tensor.to(device, non_blocking=tensor.is_pinned())
