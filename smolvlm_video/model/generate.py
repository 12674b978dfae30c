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
from dataclasses import dataclass, replace
from typing import Any

import torch
from transformers import (
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
    StopStringCriteria,
)

from ..errors import GenerationError, OutOfMemoryError, TruncatedError
from ..options import GenerationOptions
from . import compiling
from .context import check_fits
from .features import media_features
from .grammar import grammar_processor
from .inputs import ChatBatch, chat_batch
from .loading import LoadedModel
from .prompts import TRAINED_STRINGS, Chat, Message, PromptStrings
from .schemas import parse_answer


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


def generate_kwargs(options: GenerationOptions) -> dict[str, Any]:
    """Keyword arguments for transformers' `generate`: the options, without the sampling ones when greedy."""
    kwargs: dict[str, Any] = {
        "max_new_tokens": options.max_new_tokens,
        "do_sample": options.do_sample,
        "repetition_penalty": options.repetition_penalty,
    }
    if options.min_new_tokens:
        kwargs["min_new_tokens"] = options.min_new_tokens
    if options.do_sample:
        kwargs.update(temperature=options.temperature, top_p=options.top_p)
    return {**kwargs, **options.extra}


@dataclass(frozen=True)
class Answer:
    """One chat's answer, and how many tokens its prompt and its answer took."""

    text: str  # stripped
    prompt_tokens: int
    completion_tokens: int  # the end-of-turn token included, as OpenAI's usage counts it
    value: Any = None  # what a record holds (`schemas.parse_answer`): the text, or a schema's JSON value
    truncated: TruncatedError | None = None  # the schema's JSON was cut off by max_new_tokens: no value


def _parsed(answer: Answer, chat: Chat, max_new_tokens: int) -> Answer:
    """The answer with its `value`, or, where its JSON was cut off, the TruncatedError that says so."""
    try:
        return replace(answer, value=parse_answer(answer.text, chat.schema, max_new_tokens))
    except TruncatedError as error:
        return replace(answer, truncated=error)


def generate(
    model: LoadedModel,
    chats: Sequence[Chat | Sequence[Message]],
    options: GenerationOptions | None = None,
    strings: PromptStrings = TRAINED_STRINGS,
) -> list[str]:
    """Answer a batch of chats in one generate call; returns one stripped answer per chat.

    A `Chat` with a schema has its answer constrained to JSON following it (a plain list of messages
    is free text). Parse an answer with `schemas.parse_answer`. A chat whose prompt and answer
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
    prompt_tokens, new = _run(model, chats, options, strings)
    texts = model.processor.tokenizer.batch_decode(new, skip_special_tokens=True)
    ends = _end_tokens(model)
    lengths = [
        next((n + 1 for n, token in enumerate(row) if token in ends), len(row)) for row in new.tolist()
    ]
    rows = zip(texts, prompt_tokens, lengths, chats, strict=True)
    return [_parsed(Answer(t.strip(), p, c), chat, options.max_new_tokens) for t, p, c, chat in rows]


def _run(
    model: LoadedModel,
    chats: Sequence[Chat],
    options: GenerationOptions,
    strings: PromptStrings,
    streamer: _RowStreamer | None = None,
    criteria: Sequence[StoppingCriteria] = (),
    cancelled: Callable[[int], bool] | None = None,
) -> tuple[list[int], torch.Tensor]:
    """One generate call for the batch: each chat's prompt tokens, and the new ids. A row stops once
    `cancelled(row)` or any of the stopping `criteria`. Running out of memory frees what it can and raises
    OutOfMemoryError. With `model.compiled`, the step is compiled (`compiling`); the answers are the same."""
    kwargs = {"pad_token_id": model.processor.tokenizer.pad_token_id, **generate_kwargs(options)}
    rows = len(chats)
    try:
        batch, held = _inputs(model, chats, strings)
        check_fits(model, batch.inputs, chats, strings, options.max_new_tokens)
        with torch.inference_mode():
            inputs = _embedded(model, batch, held)
            if model.compiled:
                inputs = compiling.padded(inputs, rows)
                prompt = inputs["input_ids"].shape[1]
                kwargs.update(compiling.static_kwargs(model.device, prompt, options.max_new_tokens))
            padding = len(inputs["input_ids"]) - rows  # rows a compiled step adds
            if (
                constraint := grammar_processor(model, [c.schema for c in chats] + [None] * padding)
            ) is not None:
                kwargs["logits_processor"] = LogitsProcessorList([constraint])
            if cancelled or padding:  # a row may stop early, or is padding
                criteria = [_RowsCancelled(cancelled or (lambda row: False), rows), *criteria]
            stopping = StoppingCriteriaList(criteria)
            output = model.model.generate(**inputs, **kwargs, streamer=streamer, stopping_criteria=stopping)
    except (torch.OutOfMemoryError, MemoryError, RuntimeError) as error:
        if not out_of_memory(error):
            raise
        batch = held = inputs = None  # let the failed batch's tensors go before the caller retries,
        traceback.clear_frames(error.__traceback__)  # with those its traceback's frames hold
        _free_memory(model)
        raise OutOfMemoryError(
            f"Out of memory on {model.device} for a batch of {len(chats)} chats; "
            "lower the batch size or max_frames."
        ) from error
    prompt_length = batch.inputs["input_ids"].shape[1]
    return batch.inputs["attention_mask"].sum(dim=1).tolist(), output[:rows, prompt_length:]


def warm_up(model: LoadedModel) -> None:
    """Compile the decoding step for a batch of one now, where the model is compiled, so that a long-lived
    front end's first request does not wait for it (other batch sizes compile on first use)."""
    if model.compiled:
        answer_chats(model, [Chat((Message.user("Hello."),))], GenerationOptions(max_new_tokens=2))


def _end_tokens(model: LoadedModel) -> set[int]:
    ends = model.model.generation_config.eos_token_id
    return set(ends if isinstance(ends, list) else [] if ends is None else [ends])


class _RowStreamer:
    """A streamer for a batch: each row's new tokens decoded on their own, its new text handed on at once.

    A row's text is handed on token by token, as far as it is settled: not a character still being spelled
    (a multi-byte character split over tokens decodes as U+FFFD until its last byte comes), not whitespace
    at either end, which the finished answer is stripped of, and not an end that could still become one of
    the `stop` strings. A row's text ends before its first stop string. So the pieces join to the answer.

    A step decodes only a row's newest tokens, with a few before them for context (`_RowText`), so its
    cost does not grow with the answer's length; the finished answer is decoded whole, once.
    """

    def __init__(
        self,
        model: LoadedModel,
        rows: int,
        on_piece: Callable[[int, str], None],
        stop: Sequence[str] = (),
        on_start: Callable[[], None] = lambda: None,
    ) -> None:
        self.ends = _end_tokens(model)
        self.decode = model.processor.tokenizer.decode
        self.on_piece, self.on_start = on_piece, on_start
        self.stop = tuple(stop)
        self.rows = [_RowText() for _ in range(rows)]
        self.sent = [""] * rows  # each row's text handed on so far
        self.finished = [False] * rows
        self.prompt = True

    @property
    def tokens(self) -> list[list[int]]:
        return [row.tokens for row in self.rows]

    def put(self, value: torch.Tensor) -> None:
        if self.prompt:  # generate() hands over the prompt first, once the batch's prompts fit
            self.prompt = False
            self.on_start()
            return
        rows = len(self.rows)  # a compiled step's padding rows come after the batch's own, and are left out
        for row, token in enumerate(value.reshape(value.shape[0], -1)[:rows, -1].tolist()):
            if self.finished[row]:
                continue
            self.finished[row] = token in self.ends
            self.rows[row].add(token, self.decode)
            if not self.finished[row]:
                self._hand_on(row, self._until_stop(self.rows[row].text), final=False)

    def end(self) -> None:
        for row in range(len(self.rows)):
            self._hand_on(row, self.text(row), final=True)

    def text(self, row: int) -> str:
        """The row's whole answer, decoded at once and ended before its first stop string."""
        return self._until_stop(self.decode(self.rows[row].tokens, skip_special_tokens=True))

    def _until_stop(self, text: str) -> str:
        cuts = [text.index(stop) for stop in self.stop if stop in text]
        return (text[: min(cuts)] if cuts else text).strip()

    def _hand_on(self, row: int, text: str, final: bool) -> None:
        if not final:
            text = text[: len(text) - _stop_prefix(text, self.stop)].rstrip()
        if text.startswith(self.sent[row]) and len(text) > len(self.sent[row]):
            self.on_piece(row, text[len(self.sent[row]) :])
            self.sent[row] = text


class _RowText:
    """One row's tokens and their text, decoded a few tokens at a time (as vLLM detokenizes).

    Each new token decodes the tokens from `start` on, and the text they add to those before `settled`
    is appended. `start` stays a few tokens back, so a tokenizer that spells a word from its neighbours
    (a leading space) sees them. A character still being spelled (U+FFFD at the end) waits for its bytes.
    """

    def __init__(self) -> None:
        self.tokens: list[int] = []
        self.text = ""
        self.start = self.settled = 0

    def add(self, token: int, decode: Callable[..., str]) -> None:
        self.tokens.append(token)
        before = decode(self.tokens[self.start : self.settled], skip_special_tokens=True)
        after = decode(self.tokens[self.start :], skip_special_tokens=True)
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.text += after[len(before) :]
            self.start, self.settled = self.settled, len(self.tokens)


def _stop_prefix(text: str, stops: Sequence[str]) -> int:
    """The length of the longest end of `text` that begins one of `stops` (it may yet become it)."""
    return max((n for stop in stops for n in range(1, len(stop)) if text.endswith(stop[:n])), default=0)


class _RowsCancelled(StoppingCriteria):
    """Marks a row done once `cancelled(row)` says its asker has gone; generate() stops when all are.

    Rows from `rows` on are a compiled step's padding (`compiling.padded`): done from the first step.
    """

    def __init__(self, cancelled: Callable[[int], bool], rows: int) -> None:
        self.cancelled, self.rows = cancelled, rows
        self.done: list[bool] = []
        self.tensor: torch.Tensor | None = None  # `done` on the device, made again only when it changes

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: object
    ) -> torch.Tensor:
        done = [row >= self.rows or self.cancelled(row) for row in range(input_ids.shape[0])]
        if done != self.done or self.tensor is None:
            self.done, self.tensor = done, torch.tensor(done, device=input_ids.device)
        return self.tensor


def answer_streamed(
    model: LoadedModel,
    chats: Sequence[Chat],
    options: GenerationOptions,
    on_piece: Callable[[int, str], None],
    cancelled: Callable[[int], bool] = lambda row: False,
    strings: PromptStrings = TRAINED_STRINGS,
    stop: Sequence[str] = (),
    on_start: Callable[[], None] = lambda: None,
) -> list[Answer]:
    """Answer a batch of chats in one generate call, handing each row's text on in pieces as it comes
    (`on_piece(row, piece)`); a row whose `cancelled(row)` turns true stops. Returns each row's `Answer`.

    A row stops at the first of the `stop` strings, which its answer leaves out (the pieces never carry
    part of one). `on_start()` is called once every prompt of the batch fits and generation has begun.
    """
    streamer = _RowStreamer(model, len(chats), on_piece, stop, on_start)
    criteria = [StopStringCriteria(model.processor.tokenizer, list(stop))] if stop else []
    prompt_tokens, _ = _run(model, chats, options, strings, streamer, criteria, cancelled)
    rows = enumerate(zip(streamer.tokens, prompt_tokens, chats, strict=True))
    return [
        _parsed(Answer(streamer.text(row), prompt, len(tokens)), chat, options.max_new_tokens)
        for row, (tokens, prompt, chat) in rows
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
    """How many tokens a streamed chat's prompt and answer took; filled in when `stream` ends."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


def stream(
    model: LoadedModel,
    chat: Chat | Sequence[Message],
    options: GenerationOptions | None = None,
    strings: PromptStrings = TRAINED_STRINGS,
    cancel: threading.Event | None = None,
    usage: StreamUsage | None = None,
) -> Iterator[str]:
    """Yield the answer to one chat piece by piece as it is generated (JSON following its schema, if any).

    The pieces come token by token and join to the answer `generate` gives. Generation runs in a thread
    (`answer_streamed`, a batch of one). It stops when `cancel` is set, or when the caller stops iterating
    (closing the generator sets the event too), and the thread is joined before this returns. `usage`, if
    given, gets the prompt's and the answer's token counts once the answer is done.
    """
    options = options or GenerationOptions()
    cancel = cancel or threading.Event()
    pieces: queue.Queue[str | None] = queue.Queue()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            (answer,) = answer_streamed(
                model,
                [Chat.of(chat)],
                options,
                on_piece=lambda row, piece: pieces.put(piece),
                cancelled=lambda row: cancel.is_set(),
                strings=strings,
            )
            if usage is not None:
                usage.prompt_tokens, usage.completion_tokens = answer.prompt_tokens, answer.completion_tokens
        except BaseException as error:  # reported to the consumer below
            failure.append(error)
        finally:
            pieces.put(None)

    thread = threading.Thread(target=run, name="smolvlm-generate", daemon=True)
    thread.start()
    try:
        while (piece := pieces.get()) is not None:
            yield piece
    finally:
        cancel.set()
        thread.join()
    if failure:
        error = failure[0]
        if isinstance(error, GenerationError):
            raise error
        raise GenerationError(f"Generation failed: {error}") from error
