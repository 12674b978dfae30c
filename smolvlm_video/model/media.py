"""One image or video of a chat as the model takes it: its key, the text that stands for it, its pixels.

- `medium_key`: what its vision features depend on (a hash of its pixels), by which the model's
  `FeatureCache` knows it and a batch processes a shared medium once;
- `medium_text`: the prompt text that stands for it, written exactly as the checkpoints' processor writes it
  (a video: its intro, "Frame from MM:SS:" and image tokens per frame, its outro; an image: its tiles);
- `encode_medium`: that text and its pixels, from the checkpoint's own image and video processors (so
  resizing and normalisation are the model's). Frames we sampled go in as arrays with
  `do_sample_frames=False`: the processor never opens a file and never samples again.

A video's pixels can also be made ahead of time, off the thread that runs the model (`prepare_video`): in
the model's dtype and, for a GPU, in pinned memory, so the copy to the GPU runs without blocking. The
video's text comes from the same code either way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from num2words import num2words
from PIL import Image

from ..video import ModelPixels, SampledVideo
from ..video.media import Media
from .prompts import (
    FAKE_IMAGE_TOKEN,
    GLOBAL_IMAGE_TOKEN,
    IMAGE_TOKEN,
    TRAINED_STRINGS,
    Message,
    PromptStrings,
    clock,
)

if TYPE_CHECKING:
    import torch


def chat_media(messages: Iterable[Message]) -> list[Media]:
    """All images and videos of a chat in the order their tokens appear."""
    return [part for message in messages for part in message.content if not isinstance(part, str)]


def medium_key(item: Media) -> str:
    """What a medium's features depend on: its pixels (a video's sampled frames, an image's), their shape.

    A video's is its `digest`, made once per sampled video however often it is asked for.
    """
    if isinstance(item, SampledVideo):
        return item.digest
    if not isinstance(item, Image.Image):
        raise TypeError(f"A chat's media are PIL images and SampledVideo, not {type(item).__name__}.")
    digest = hashlib.blake2b(f"image {item.size} {item.mode}".encode(), digest_size=16)
    digest.update(bytes(item.getpalette() or []))  # a palette image's colours are not in its bytes
    digest.update(item.tobytes())
    return digest.hexdigest()


def video_pixels(processor: Any, video: SampledVideo) -> ModelPixels:
    """The processor's pixels (batch 1) for a video's frames, in float32."""
    out = processor.video_processor(videos=[video.frames], do_sample_frames=False, return_tensors="pt")
    return ModelPixels(out["pixel_values"], out["pixel_attention_mask"])


def prepare_video(
    processor: Any, video: SampledVideo, dtype: torch.dtype | None = None, pin: bool = False
) -> SampledVideo:
    """The video with its pixels made now: in `dtype` (None: the processor's float32), pinned if `pin`.

    Pin only where CUDA is: pinned memory is what lets the copy to the GPU run without blocking.
    """
    pixels = video_pixels(processor, video)
    values, mask = pixels.values.to(dtype) if dtype else pixels.values, pixels.mask
    if pin:
        values, mask = values.pin_memory(), mask.pin_memory()
    return replace(video, pixels=ModelPixels(values, mask))


@dataclass(frozen=True)
class EncodedMedium:
    """One medium of a chat as the model takes it: the text that stands for it, and its pixels."""

    text: str
    pixels: ModelPixels


def encode_medium(processor: Any, item: Media, strings: PromptStrings = TRAINED_STRINGS) -> EncodedMedium:
    """The prompt text and pixels (batch 1) of one image or sampled video of a chat.

    A video's text is the same whether its pixels were made ahead or are made here.
    """
    seq_len = processor.image_seq_len
    if isinstance(item, SampledVideo):
        pixels = item.pixels or video_pixels(processor, item)
        return EncodedMedium(medium_text(processor, item, strings), pixels)
    if isinstance(item, Image.Image):
        out = processor.image_processor(
            [[item.convert("RGB")]], return_row_col_info=True, return_tensors="pt"
        )
        text = image_tokens(out["rows"][0][0], out["cols"][0][0], seq_len)
        return EncodedMedium(text, ModelPixels(out["pixel_values"], out["pixel_attention_mask"]))
    raise TypeError(f"A chat's media are PIL images and SampledVideo, not {type(item).__name__}.")


def medium_text(processor: Any, item: Media, strings: PromptStrings = TRAINED_STRINGS) -> str:
    """The text that stands for one medium in the prompt; a video's is written without making its pixels."""
    if isinstance(item, SampledVideo):
        return video_tokens(item.timestamps, item.info.duration, processor.image_seq_len, strings)
    return encode_medium(processor, item, strings).text  # an image's tiles follow from its processing


def image_frame_tokens(tokens_per_frame: int) -> str:
    """The tokens of one unsplit image or video frame."""
    return f"{FAKE_IMAGE_TOKEN}{GLOBAL_IMAGE_TOKEN}{IMAGE_TOKEN * tokens_per_frame}{FAKE_IMAGE_TOKEN}"


def image_tokens(rows: int, cols: int, tokens_per_frame: int) -> str:
    """The tokens of an image split into rows x cols tiles plus a global view (0 x 0: not split)."""
    if rows == 0 and cols == 0:
        return image_frame_tokens(tokens_per_frame)
    tiles = "".join(
        "".join(
            f"{FAKE_IMAGE_TOKEN}<row_{r + 1}_col_{c + 1}>{IMAGE_TOKEN * tokens_per_frame}"
            for c in range(cols)
        )
        + "\n"
        for r in range(rows)
    )
    return f"{tiles}\n{image_frame_tokens(tokens_per_frame)}"


def video_tokens(
    timestamps: Sequence[float],
    duration: float,
    tokens_per_frame: int,
    strings: PromptStrings = TRAINED_STRINGS,
) -> str:
    """The intro, one timestamped block per frame, and the outro for a sampled video."""
    intro = strings.video_intro.format(
        frame_count=num2words(len(timestamps)), video_duration=str(timedelta(seconds=int(duration)))
    )
    frame = image_frame_tokens(tokens_per_frame)
    frames = "".join(strings.frame_timestamp.format(timestamp=clock(t)) + frame for t in timestamps)
    return intro + frames + strings.media_outro
