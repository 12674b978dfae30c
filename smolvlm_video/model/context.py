"""The model's context: a chat whose prompt and answer cannot fit is refused before generation.

The checkpoints' language model has a fixed context (8,192 tokens for 256M and 500M, 16,384 for 2.2B).
A longer prompt does not fail by itself: it runs on positions the model never saw and answers
noise. So each chat of a batch is measured once its ids are made, and one that cannot hold its
prompt plus `max_new_tokens` raises `PromptTooLongError`, which says how long the prompt was and
which part made it long: the frames and images, a JSON schema, or the text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..errors import PromptTooLongError
from .prompts import Chat, Message, PromptStrings
from .tokens import text_tokens

if TYPE_CHECKING:
    import torch

    from .loading import LoadedModel
    from .schemas import JsonSchema

ADVICE = {
    "the frames and images": "lower --max-frames or --fps, or shorten the window (--window-seconds)",
    "the JSON schema": "use a shorter JSON schema (fewer enum values, shorter descriptions)",
    "the text": "shorten the prompt, the system message or the conversation",
}


def check_fits(
    model: LoadedModel,
    inputs: Mapping[str, torch.Tensor],
    chats: Sequence[Chat],
    strings: PromptStrings,
    max_new_tokens: int,
) -> None:
    """Raise PromptTooLongError for the first chat whose prompt and answer exceed the model's context."""
    context = model.context_length
    for row, length in enumerate(inputs["attention_mask"].sum(dim=1).tolist()):
        if length + max_new_tokens > context:
            chat = chats[row]
            raise PromptTooLongError(
                _message(model, chat.messages, strings, chat.schema, length, max_new_tokens)
            )


def _message(
    model: LoadedModel,
    messages: Sequence[Message],
    strings: PromptStrings,
    schema: JsonSchema | None,
    length: int,
    max_new_tokens: int,
) -> str:
    parts = prompt_parts(model, messages, strings, schema, length)
    largest = max(parts, key=parts.__getitem__)
    shares = "; ".join(f"{name}: {tokens:,}" for name, tokens in parts.items() if tokens)
    return (
        f"The prompt is {length:,} tokens: with up to {max_new_tokens:,} new tokens it does not fit the "
        f"model's context of {model.context_length:,} tokens. Most of it is {largest} ({shares}); "
        f"{ADVICE[largest]}."
    )


def prompt_parts(
    model: LoadedModel,
    messages: Sequence[Message],
    strings: PromptStrings,
    schema: JsonSchema | None,
    length: int,
) -> dict[str, int]:
    """How many of a chat's `length` prompt tokens its media, its JSON schema and its text take."""
    from .media import chat_media, medium_text

    processor = model.processor

    def tokens(text: str) -> int:  # the media's text: its special-token strings are its tokens
        return len(processor.tokenizer(text, add_special_tokens=False)["input_ids"])

    media = sum(tokens(medium_text(processor, item, strings)) for item in chat_media(messages))
    schema_tokens = text_tokens(processor.tokenizer, schema.prompt("")) if schema else 0
    return {
        "the frames and images": media,
        "the JSON schema": schema_tokens,
        "the text": max(0, length - media - schema_tokens),
    }
