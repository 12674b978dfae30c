"""Answer many chats in batches, so that no chat's failure can stop the others.

- Out of memory (on the GPU, or the CPU allocator's equivalent): the batch is split in halves and each
  half retried, down to one chat. The smaller batch size is kept for the rest of the run, since the
  next batch would most likely run out of memory too.
- Any other exception from the model (a prompt longer than the context, a CUDA fault, an image-token
  mismatch): the batch is retried one chat at a time, so only the chats that fail on their own fail.

A chat that still fails comes back as a `GenerationError` in place of its answer. KeyboardInterrupt
and SystemExit are never caught. A chat with a JSON schema comes back as the parsed JSON value, or as
a `TruncatedError` where max_new_tokens cut its JSON off.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..errors import GenerationError, OutOfMemoryError, TruncatedError
from ..model.generate import generate
from ..model.loading import LoadedModel
from ..model.prompts import Chat
from ..model.schemas import parse_answer
from ..options import GenerationOptions

logger = logging.getLogger(__name__)

Answer = Any  # the text; with a schema, the parsed JSON value; or a GenerationError


class Answerer:
    """Answers chats with one model, `batch_size` chats per generate call, backing off on out-of-memory."""

    def __init__(self, model: LoadedModel, options: GenerationOptions, batch_size: int = 4) -> None:
        self.model = model
        self.options = options
        self.batch_size = max(1, batch_size)  # lowered for good after an out-of-memory error

    def answer(self, chats: Sequence[Chat]) -> list[Answer]:
        """One answer or one GenerationError per chat, in order."""
        answers: list[Answer] = []
        while len(answers) < len(chats):
            answers += self._attempt(chats[len(answers) : len(answers) + self.batch_size])
        return answers

    def _attempt(self, chats: Sequence[Chat]) -> list[Answer]:
        try:
            texts = generate(self.model, chats, self.options)
            return [self._parsed(text, chat) for text, chat in zip(texts, chats, strict=True)]
        except OutOfMemoryError as error:
            if len(chats) == 1:
                return [
                    OutOfMemoryError(
                        f"Out of memory on {self.model.device} for one chat; lower max_frames "
                        f"(--max-frames) or frame_side, or use a smaller model. ({error.__cause__ or error})"
                    )
                ]
            half = len(chats) // 2
            if half < self.batch_size:
                logger.warning("Out of memory with %d chats a batch; going on with %d.", len(chats), half)
                self.batch_size = half
            return self._attempt(chats[:half]) + self._attempt(chats[half:])
        except Exception as error:  # the model's own failures, whatever their type: narrow them down
            if len(chats) == 1:
                return [_generation_error(error)]
            logger.warning(
                "A batch of %d chats failed (%s: %s); retrying them one at a time.",
                len(chats),
                type(error).__name__,
                error,
            )
            return [answer for chat in chats for answer in self._attempt([chat])]

    def _parsed(self, text: str, chat: Chat) -> Answer:
        if chat.schema is None:
            return text
        try:
            return parse_answer(text, self.options.max_new_tokens)
        except TruncatedError as error:
            return error


def _generation_error(error: Exception) -> GenerationError:
    if isinstance(error, GenerationError):
        return error
    return GenerationError(f"generation failed: {type(error).__name__}: {error}")
