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
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from ..errors import GenerationError, OutOfMemoryError
from ..options import GenerationOptions
from .context import check_fits
from .inputs import build_inputs
from .loading import LoadedModel
from .prompts import TRAINED_STRINGS, Chat, Message, PromptStrings

STREAM_POLL_SECONDS = 0.1  # how often a streaming consumer checks that generation is still alive


class _Cancelled(StoppingCriteria):
    """Stops generate() at the next token once its event is set."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: object) -> bool:
        return self.event.is_set()


def _inputs(model: LoadedModel, chats: Sequence[Chat], strings: PromptStrings) -> dict:
    inputs = dict(build_inputs(model.processor, [c.messages for c in chats], strings, model.device))
    if "pixel_values" in inputs:
        inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    return inputs


def _embedded(model: LoadedModel, inputs: dict) -> dict:
    """The batch as input embeddings, its images and frames through the vision encoder.

    `model.vision` says how: "batched" encodes every chat's frames in one call, the shape a GPU runs
    best; "per-chat" one chat's frames per call. The language model decodes the whole batch at once
    either way. Per-chat is the CPU's choice: there a bigger vision call is slower per frame (256M
    shape, bfloat16: 0.36 s a frame for 32 frames against 0.29 s for 8), while batching the language
    model still pays (4 chats cost 0.38 s of it each, one alone 0.89 s). Call under torch.inference_mode().
    """
    pixels = inputs.pop("pixel_values", None)
    pixel_masks = inputs.pop("pixel_attention_mask", None)
    ids = inputs["input_ids"]
    embeds = model.model.get_input_embeddings()(ids)
    if pixels is None:
        return {**inputs, "inputs_embeds": embeds}
    image_token = model.model.config.image_token_id
    step = ids.shape[0] if model.vision == "batched" else 1
    for first in range(0, ids.shape[0], step):
        rows = slice(first, first + step)
        slots = ids[rows] == image_token
        if slots.any():  # the model drops all-zero padding images, so rows without media add nothing
            features = _image_features(model.model, pixels[rows], pixel_masks[rows])
            embeds[rows][slots] = features.to(embeds.dtype)
    return {**inputs, "inputs_embeds": embeds}


def _image_features(vlm: Any, pixel_values: torch.Tensor, pixel_attention_mask: torch.Tensor) -> torch.Tensor:
    """One row per image token: the vision encoder and connector's output for one chat's images."""
    output = vlm.get_image_features(pixel_values=pixel_values, pixel_attention_mask=pixel_attention_mask)
    features = getattr(output, "pooler_output", output)  # an output object, or the tensor itself
    if isinstance(features, (list, tuple)):
        features = torch.cat(list(features))
    return features.reshape(-1, features.shape[-1])


def _generate_kwargs(model: LoadedModel, options: GenerationOptions, chats: Sequence[Chat]) -> dict:
    from .grammar import grammar_processor

    kwargs = {"pad_token_id": model.processor.tokenizer.pad_token_id, **options.generate_kwargs()}
    constraint = grammar_processor(model, [c.schema for c in chats])
    if constraint is not None:
        kwargs["logits_processor"] = LogitsProcessorList([constraint])
    return kwargs


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
    options = options or GenerationOptions()
    chats = [Chat.of(c) for c in chats]
    try:
        inputs = _inputs(model, chats, strings)
        check_fits(model, inputs, chats, strings, options.max_new_tokens)
        prompt_length = inputs["input_ids"].shape[1]
        kwargs = _generate_kwargs(model, options, chats)
        with torch.inference_mode():
            output = model.model.generate(**_embedded(model, inputs), **kwargs)
    except (torch.OutOfMemoryError, MemoryError, RuntimeError) as error:
        if not out_of_memory(error):
            raise
        inputs = None  # let the failed batch's tensors go before the caller retries
        if model.device.type == "cuda":
            torch.cuda.empty_cache()
        raise OutOfMemoryError(
            f"Out of memory on {model.device} for a batch of {len(chats)} chats; "
            "lower the batch size or max_frames."
        ) from error
    answers = model.processor.tokenizer.batch_decode(output[:, prompt_length:], skip_special_tokens=True)
    return [answer.strip() for answer in answers]


CPU_OUT_OF_MEMORY = ("DefaultCPUAllocator: can't allocate memory", "not enough memory")


def out_of_memory(error: BaseException) -> bool:
    """Whether an error from torch means the device or the CPU's allocator ran out of memory."""
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(error, RuntimeError) and any(text in str(error) for text in CPU_OUT_OF_MEMORY)


def stream(
    model: LoadedModel,
    chat: Chat | Sequence[Message],
    options: GenerationOptions | None = None,
    strings: PromptStrings = TRAINED_STRINGS,
    cancel: threading.Event | None = None,
) -> Iterator[str]:
    """Yield the answer to one chat piece by piece as it is generated (JSON following its schema, if any).

    Generation runs in a thread. It stops when `cancel` is set, or when the caller stops iterating
    (closing the generator sets the event too), and the thread is joined before this returns.
    """
    options = options or GenerationOptions()
    cancel = cancel or threading.Event()
    chats = [Chat.of(chat)]
    inputs = _inputs(model, chats, strings)
    check_fits(model, inputs, chats, strings, options.max_new_tokens)
    kwargs = _generate_kwargs(model, options, chats)
    streamer = TextIteratorStreamer(
        model.processor.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=STREAM_POLL_SECONDS
    )
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with torch.inference_mode():
                model.model.generate(
                    **_embedded(model, inputs),
                    **kwargs,
                    streamer=streamer,
                    stopping_criteria=StoppingCriteriaList([_Cancelled(cancel)]),
                )
        except BaseException as error:  # reported to the consumer below
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
