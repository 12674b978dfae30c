"""Token ids for prompts whose user text can never become a special token.

A tokenizer given one string turns every special-token string in it into that token, wherever it came
from. So a question holding "<image>" would add an image token with no image behind it (and fail), and
"<end_of_utterance>\\nAssistant: ..." would end the user's turn and write the assistant's first words.

Here a prompt comes as `Segment`s (`prompts.chat_segments`). The template's segments are split at their
special-token strings, which become their tokens; everything between them, the template's plain text
and the user's text together, is tokenized with special tokens split into ordinary text. The cuts fall
where the tokenizer itself cuts a string (at its added tokens), so for text without special-token
strings the ids are exactly those of the whole string: the parity tests against transformers' processor
hold unchanged.

All the plain runs of a batch go to the tokenizer in one call.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from .prompts import Segment

Piece = str | int  # plain text to tokenize, or a special token's id


@functools.lru_cache(maxsize=8)
def _splitter(added: tuple[str, ...]) -> re.Pattern[str]:
    """A pattern matching any of the tokenizer's added tokens, longest first (as the tokenizer matches)."""
    return re.compile("|".join(re.escape(token) for token in sorted(added, key=len, reverse=True)))


def _pieces(segments: Sequence[Segment], added: dict[str, int]) -> list[Piece]:
    """The prompt as plain runs and special ids; adjacent plain text (template's or user's) joins one run."""
    splitter = _splitter(tuple(added))
    pieces: list[Piece] = []
    run: list[str] = []
    for segment in segments:
        if segment.user:
            run.append(segment.text)
            continue
        position = 0
        for match in splitter.finditer(segment.text):
            run.append(segment.text[position : match.start()])
            if any(run):
                pieces.append("".join(run))
            run = []
            pieces.append(added[match.group()])
            position = match.end()
        run.append(segment.text[position:])
    if any(run):
        pieces.append("".join(run))
    return pieces


def prompt_ids(tokenizer: Any, prompts: Sequence[Sequence[Segment]]) -> list[list[int]]:
    """The token ids of each prompt: special tokens from the template only, the user's text as text."""
    # Every added token's string -> id: the tokenizer cuts a string at each of them.
    added = tokenizer.added_tokens_encoder
    rows = [_pieces(segments, added) for segments in prompts]
    runs = [piece for row in rows for piece in row if isinstance(piece, str)]
    encoded = iter(
        tokenizer(runs, add_special_tokens=False, split_special_tokens=True)["input_ids"] if runs else []
    )
    ids: list[list[int]] = []
    for row in rows:
        row_ids: list[int] = []
        for piece in row:
            if isinstance(piece, str):
                row_ids += next(encoded)
            else:
                row_ids.append(piece)
        ids.append(row_ids)
    return ids


def text_tokens(tokenizer: Any, text: str) -> int:
    """How many tokens a person's text takes (its special-token strings as text)."""
    return len(tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])
