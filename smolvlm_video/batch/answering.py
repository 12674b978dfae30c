"""Answer many questions in batches, so that no question's failure can stop the others.

Each question is asked about its media (a window's frames, or none) in a chat of its own (`prompts.chat`),
`batch_size` chats per generate call.

- Out of memory (on the GPU, or the CPU allocator's equivalent): the batch is split in halves and each
  half retried, down to one chat. The smaller batch size is kept for the rest of the run, since the
  next batch would most likely run out of memory too.
- Any other exception from the model (a prompt longer than the context, a CUDA fault, an image-token
  mismatch): the batch is retried one chat at a time, so only the chats that fail on their own fail.

A chat that still fails comes back as a `GenerationError` in place of its `Answer`. KeyboardInterrupt
and SystemExit are never caught. Each answer's `value` is what a record holds: the text, or for a
question with a JSON schema the JSON value; a `TruncatedError` comes back instead where max_new_tokens
cut that JSON off.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..errors import GenerationError, OutOfMemoryError
from ..model.generate import Answer, answer_chats
from ..model.loading import LoadedModel
from ..model.prompts import chat
from ..model.schemas import Question
from ..options import GenerationOptions
from ..video.media import Media

logger = logging.getLogger(__name__)


Asked = tuple[Question, Sequence[Media]]  # a question, and the media it is about (none: text alone)


class Answerer:
    """Answers questions with one model, `batch_size` chats a generate call, backing off on out-of-memory."""

    def __init__(self, model: LoadedModel, options: GenerationOptions, batch_size: int = 4) -> None:
        self.model = model
        self.options = options
        self.batch_size = max(1, batch_size)  # lowered for good after an out-of-memory error

    def answer(self, asked: Sequence[Asked], system: str | None = None) -> list[Answer | GenerationError]:
        """One answer or one GenerationError per question, in order; `system` comes before each."""
        answers: list[Answer | GenerationError] = []
        while len(answers) < len(asked):
            answers += self._attempt(asked[len(answers) : len(answers) + self.batch_size], system)
        return answers

    def _attempt(self, asked: Sequence[Asked], system: str | None) -> list[Answer | GenerationError]:
        try:
            chats = [chat(question, *media, system=system) for question, media in asked]
            return [answer.truncated or answer for answer in answer_chats(self.model, chats, self.options)]
        except OutOfMemoryError as error:
            if len(asked) == 1:
                return [
                    OutOfMemoryError(
                        f"Out of memory on {self.model.device} for one chat; lower max_frames "
                        f"(--max-frames) or frame_side, or use a smaller model. ({error.__cause__ or error})"
                    )
                ]
            half = len(asked) // 2
            if half < self.batch_size:
                logger.warning("Out of memory with %d chats a batch; going on with %d.", len(asked), half)
                self.batch_size = half
            return self._attempt(asked[:half], system) + self._attempt(asked[half:], system)
        except Exception as error:  # the model's own failures, whatever their type: narrow them down
            if len(asked) == 1:
                return [_generation_error(error)]
            logger.warning(
                "A batch of %d chats failed (%s: %s); retrying them one at a time.",
                len(asked),
                type(error).__name__,
                error,
            )
            return [answer for one in asked for answer in self._attempt([one], system)]


def _generation_error(error: Exception) -> GenerationError:
    if isinstance(error, GenerationError):
        return error
    return GenerationError(f"generation failed: {type(error).__name__}: {error}")
