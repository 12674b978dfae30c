"""Generate answers: a batch of chats at once, or one chat streamed token by token.

>>> from smolvlm_video import ModelOptions, SamplingOptions, chat, generate, load_fitted, sample_video, stream
>>> model, sampling = load_fitted(ModelOptions(), SamplingOptions())
>>> video = sample_video("clip.mp4", sampling)
>>> generate(model, [chat("Describe this video.", video)])
>>> for piece in stream(model, chat("What happens at the end?", video)):
...     print(piece, end="")
"""

from __future__ import annotations

import queue
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import (
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
    TextStreamer,
)

from ..errors import GenerationError, OutOfMemoryError
from ..options import GenerationOptions
from .context import check_fits
from .features import media_features
from .inputs import ChatBatch, chat_batch
from .loading import LoadedModel
from .prompts import TRAINED_STRINGS, Chat, Message, PromptStrings

STREAM_POLL_SECONDS = 0.1  # how often a streaming consumer checks that generation is still alive


class _Cancelled(StoppingCriteria):
    """Stops generate() at the next token once its event is set."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: object) -> bool:
        return self.event.is_set()


def _inputs(
    model: LoadedModel, chats: Sequence[Chat], strings: PromptStrings
) -> tuple[ChatBatch, dict[str, torch.Tensor]]:
    """The batch's ids and new media's pixels, and the features of the media the model's cache holds."""
    held: dict[str, torch.Tensor] = {}

    def known(key: str) -> bool:  # the features are taken now, so an eviction cannot lose them
        features = model.features.get(key)
        if features is not None:
            held[key] = features
        return features is not None

    messages = [chat.messages for chat in chats]
    return chat_batch(model.processor, messages, strings, model.device, known), held


def _embedded(model: LoadedModel, batch: ChatBatch, held: dict[str, torch.Tensor]) -> dict:
    """The batch as input embeddings, each chat's image tokens replaced by its media's vision features.

    The language model then decodes the whole batch at once. Call under torch.inference_mode().
    """
    ids = batch.inputs["input_ids"]
    embeds = model.model.get_input_embeddings()(ids)
    features = media_features(model, batch, held)
    image_token = model.model.config.image_token_id
    for row, keys in enumerate(batch.media):
        if keys:
            embeds[row][ids[row] == image_token] = torch.cat([features[key] for key in keys]).to(embeds.dtype)
    return {**batch.inputs, "inputs_embeds": embeds}


def _generate_kwargs(model: LoadedModel, options: GenerationOptions, chats: Sequence[Chat]) -> dict:
    from .grammar import grammar_processor

    kwargs = {"pad_token_id": model.processor.tokenizer.pad_token_id, **options.generate_kwargs()}
    constraint = grammar_processor(model, [c.schema for c in chats])
    if constraint is not None:
        kwargs["logits_processor"] = LogitsProcessorList([constraint])
    return kwargs


@dataclass(frozen=True)
class Answer:
    """One chat's answer, and how many tokens its prompt and its answer took."""

    text: str  # stripped
    prompt_tokens: int
    completion_tokens: int  # the end-of-turn token included, as OpenAI's usage counts it


def generate(
    model: LoadedModel,
    chats: Sequence[Chat | Sequence[Message]],
    options: GenerationOptions | None = None,
    strings: PromptStrings = TRAINED_STRINGS,
) -> list[str]:
    """Answer a batch of chats in one generate call; returns one stripped answer per chat.

    A `Chat` with a schema has its answer constrained to JSON following it (a plain list of messages
    is free text). Parse such answers with `schemas.parse_answer`. A chat whose prompt and answer
    cannot fit the model's context raises PromptTooLongError before anything is generated.
    """
    return [answer.text for answer in answer_chats(model, chats, options, strings)]


def answer_chats(
    model: LoadedModel,
    chats: Sequence[Chat | Sequence[Message]],
    options: GenerationOptions | None = None,
    strings: PromptStrings = TRAINED_STRINGS,
) -> list[Answer]:
    """`generate`, with each answer's token counts."""
    options = options or GenerationOptions()
    chats = [Chat.of(c) for c in chats]
    try:
        batch, held = _inputs(model, chats, strings)
        check_fits(model, batch.inputs, chats, strings, options.max_new_tokens)
        prompt_length = batch.inputs["input_ids"].shape[1]
        kwargs = _generate_kwargs(model, options, chats)
        with torch.inference_mode():
            output = model.model.generate(**_embedded(model, batch, held), **kwargs)
    except (torch.OutOfMemoryError, MemoryError, RuntimeError) as error:
        if not out_of_memory(error):
            raise
        batch = held = None  # let the failed batch's tensors go before the caller retries,
        traceback.clear_frames(error.__traceback__)  # with those its traceback's frames hold
        _free_memory(model)
        raise OutOfMemoryError(
            f"Out of memory on {model.device} for a batch of {len(chats)} chats; "
            "lower the batch size or max_frames."
        ) from error
    new = output[:, prompt_length:]
    texts = model.processor.tokenizer.batch_decode(new, skip_special_tokens=True)
    prompt_tokens = batch.inputs["attention_mask"].sum(dim=1).tolist()
    completion_tokens = _answer_lengths(model, new)
    return [Answer(t.strip(), p, c) for t, p, c in zip(texts, prompt_tokens, completion_tokens, strict=True)]


def _answer_lengths(model: LoadedModel, new: torch.Tensor) -> list[int]:
    """Tokens generated for each row, up to and with its first end token (a row that ends early is padded)."""
    ends = model.model.generation_config.eos_token_id
    ends = set(ends if isinstance(ends, list) else [] if ends is None else [ends])
    lengths = []
    for row in new.tolist():
        end = next((index for index, token in enumerate(row) if token in ends), None)
        lengths.append(len(row) if end is None else end + 1)
    return lengths


class _RowStreamer:
    """A streamer for a batch: each row's new tokens decoded on their own, its text handed on in pieces."""

    def __init__(self, model: LoadedModel, rows: int, on_piece: Callable[[int, str], None]) -> None:
        ends = model.model.generation_config.eos_token_id
        self.ends = set(ends if isinstance(ends, list) else [] if ends is None else [ends])
        self.tokens: list[list[int]] = [[] for _ in range(rows)]
        self.finished = [False] * rows
        self.prompt = True
        self.rows = [_PieceStreamer(model.processor.tokenizer, row, on_piece) for row in range(rows)]

    def put(self, value: torch.Tensor) -> None:
        if self.prompt:  # generate() hands over the prompt first
            self.prompt = False
            return
        for row, token in enumerate(value.reshape(len(self.rows), -1)[:, -1].tolist()):
            if self.finished[row]:
                continue
            self.tokens[row].append(token)
            if token in self.ends:
                self.finished[row] = True
            else:
                self.rows[row].put(torch.tensor([token]))

    def end(self) -> None:
        for row in self.rows:
            row.end()


class _PieceStreamer(TextStreamer):
    """One row's text, in the pieces transformers' TextStreamer finalizes (whole words, whole characters)."""

    def __init__(self, tokenizer: Any, row: int, on_piece: Callable[[int, str], None]) -> None:
        super().__init__(tokenizer, skip_prompt=False, skip_special_tokens=True)
        self.row, self.on_piece, self.started = row, on_piece, False

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        text = text if self.started else text.lstrip()
        if text:
            self.started = True
            self.on_piece(self.row, text)


class _RowsCancelled(StoppingCriteria):
    """Marks a row done once `cancelled(row)` says its asker has gone; generate() stops when all are."""

    def __init__(self, cancelled: Callable[[int], bool]) -> None:
        self.cancelled = cancelled

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: object
    ) -> torch.Tensor:
        return torch.tensor(
            [self.cancelled(row) for row in range(input_ids.shape[0])], device=input_ids.device
        )


def answer_streamed(
    model: LoadedModel,
    chats: Sequence[Chat],
    options: GenerationOptions,
    on_piece: Callable[[int, str], None],
    cancelled: Callable[[int], bool] = lambda row: False,
    strings: PromptStrings = TRAINED_STRINGS,
) -> list[Answer]:
    """Answer a batch of chats in one generate call, handing each row's text on in pieces as it comes
    (`on_piece(row, piece)`); a row whose `cancelled(row)` turns true stops. Returns each row's `Answer`."""
    batch, held = _inputs(model, chats, strings)
    check_fits(model, batch.inputs, chats, strings, options.max_new_tokens)
    streamer = _RowStreamer(model, len(chats), on_piece)
    kwargs = _generate_kwargs(model, options, chats)
    try:
        stopping = StoppingCriteriaList([_RowsCancelled(cancelled)])
        with torch.inference_mode():
            model.model.generate(
                **_embedded(model, batch, held), **kwargs, streamer=streamer, stopping_criteria=stopping
            )
    except (torch.OutOfMemoryError, MemoryError, RuntimeError) as error:
        if not out_of_memory(error):
            raise
        batch = held = None
        traceback.clear_frames(error.__traceback__)
        _free_memory(model)
        raise OutOfMemoryError(
            f"Out of memory on {model.device} for a batch of {len(chats)} chats."
        ) from error
    prompt_tokens = batch.inputs["attention_mask"].sum(dim=1).tolist()
    decode = model.processor.tokenizer.decode
    return [
        Answer(decode(tokens, skip_special_tokens=True).strip(), prompt, len(tokens))
        for tokens, prompt in zip(streamer.tokens, prompt_tokens, strict=True)
    ]


def _free_memory(model: LoadedModel) -> None:
    """After running out of memory: the feature cache let go, and CUDA's cached blocks returned."""
    model.features.clear()
    if model.device.type == "cuda":
        torch.cuda.empty_cache()


CPU_OUT_OF_MEMORY = ("DefaultCPUAllocator: can't allocate memory", "not enough memory")


def out_of_memory(error: BaseException) -> bool:
    """Whether an error from torch means the device or the CPU's allocator ran out of memory."""
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(error, RuntimeError) and any(text in str(error) for text in CPU_OUT_OF_MEMORY)


@dataclass
class StreamUsage:
    """How many tokens a streamed chat's prompt and answer took; filled in as `stream` goes."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


class _CountingStreamer(TextIteratorStreamer):
    """A text streamer that also counts the tokens it is given after the prompt."""

    def __init__(self, tokenizer: Any, usage: StreamUsage, **kwargs: Any) -> None:
        super().__init__(tokenizer, **kwargs)
        self.usage = usage

    def put(self, value: torch.Tensor) -> None:
        if not (self.skip_prompt and self.next_tokens_are_prompt):
            self.usage.completion_tokens += value.numel()
        super().put(value)


def stream(
    model: LoadedModel,
    chat: Chat | Sequence[Message],
    options: GenerationOptions | None = None,
    strings: PromptStrings = TRAINED_STRINGS,
    cancel: threading.Event | None = None,
    usage: StreamUsage | None = None,
) -> Iterator[str]:
    """Yield the answer to one chat piece by piece as it is generated (JSON following its schema, if any).

    Generation runs in a thread. It stops when `cancel` is set, or when the caller stops iterating
    (closing the generator sets the event too), and the thread is joined before this returns. `usage`, if
    given, counts the prompt's tokens and the answer's as they come.
    """
    options = options or GenerationOptions()
    cancel = cancel or threading.Event()
    chats = [Chat.of(chat)]
    batch, held = _inputs(model, chats, strings)
    check_fits(model, batch.inputs, chats, strings, options.max_new_tokens)
    kwargs = _generate_kwargs(model, options, chats)
    usage = usage if usage is not None else StreamUsage()
    usage.prompt_tokens = int(batch.inputs["attention_mask"].sum())
    streamer = _CountingStreamer(
        model.processor.tokenizer,
        usage,
        skip_prompt=True,
        skip_special_tokens=True,
        timeout=STREAM_POLL_SECONDS,
    )
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with torch.inference_mode():
                model.model.generate(
                    **_embedded(model, batch, held),
                    **kwargs,
                    streamer=streamer,
                    stopping_criteria=StoppingCriteriaList([_Cancelled(cancel)]),
                )
        except BaseException as error:  # reported to the consumer below
            if out_of_memory(error):
                _free_memory(model)
            failure.append(error)
            streamer.end()

    thread = threading.Thread(target=run, name="smolvlm-generate", daemon=True)
    thread.start()
    try:
        yield from _pieces(streamer, thread)
    finally:
        cancel.set()
        thread.join()
    if failure:
        raise GenerationError(f"Generation failed: {failure[0]}") from failure[0]


def _pieces(streamer: TextIteratorStreamer, thread: threading.Thread) -> Iterator[str]:
    """Text pieces from the streamer, waiting in short polls so a dead thread cannot hang us."""
    while True:
        try:
            piece = next(streamer)
        except StopIteration:
            return
        except queue.Empty:
            if not thread.is_alive() and streamer.text_queue.empty():
                return
            continue
        if piece:
            yield piece
