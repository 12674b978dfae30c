"""Constrain generation to a JSON schema, token by token, through a transformers logits processor.

Each chat of a batch that has a schema gets a grammar matcher (xgrammar's, compiled for the
checkpoint's tokenizer). Before each token, the matcher marks the tokens that keep the answer a
valid prefix of JSON that follows the schema, and every other token's logit becomes -inf; once the
JSON closes, only the end of the answer is allowed. Chats without a schema in the same batch are
left alone. xgrammar was chosen over llguidance by `benchmarks/constrained.py` (see docs/shots-and-json.md).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Protocol

import torch
from transformers import LogitsProcessor

from ..errors import GenerationError
from .loading import LoadedModel
from .schemas import SEPARATORS, JsonSchema

# Compiled grammars kept for reuse, per tokenizer. xgrammar's default keeps every one: 300 new schemas
# cost 72-172 MB with SmolVLM2's vocabulary, and the next 300 as much again.
GRAMMAR_CACHE_BYTES = 64 << 20


class Matcher(Protocol):
    """What the processor needs of a grammar matcher (xgrammar.GrammarMatcher has exactly this)."""

    def fill_next_token_bitmask(self, bitmask: torch.Tensor, index: int) -> Any: ...

    def accept_token(self, token_id: int) -> bool: ...

    def is_terminated(self) -> bool: ...


class GrammarProcessor(LogitsProcessor):
    """Masks each constrained row's logits to what its matcher allows. One per generate() call."""

    def __init__(self, matchers: Sequence[Matcher | None], vocab_size: int) -> None:
        import xgrammar

        self.matchers = list(matchers)
        self.rows = [row for row, matcher in enumerate(self.matchers) if matcher is not None]
        self.bitmask = xgrammar.allocate_token_bitmask(len(self.matchers), vocab_size)
        self.started = False

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        import xgrammar

        live = []
        for row in self.rows:
            matcher = self.matchers[row]
            assert matcher is not None
            if self.started and not matcher.is_terminated():
                token = int(input_ids[row, -1])
                if not matcher.accept_token(token):
                    raise GenerationError(f"the grammar refused token {token} in row {row}")
            if not matcher.is_terminated():
                matcher.fill_next_token_bitmask(self.bitmask, row)
                live.append(row)
        self.started = True
        if live:
            bitmask = self.bitmask.to(scores.device, non_blocking=True)
            if scores.device.type not in ("cuda", "cpu"):  # xgrammar masks on CUDA or the CPU
                masked = scores.cpu()
                xgrammar.apply_token_bitmask_inplace(masked, bitmask.cpu(), indices=live)
                return masked.to(scores.device)
            xgrammar.apply_token_bitmask_inplace(scores, bitmask, indices=live)
        return scores


def grammar_processor(model: LoadedModel, schemas: Sequence[JsonSchema | None]) -> GrammarProcessor | None:
    """The processor for a batch whose chats follow these schemas (None: free text); None if none has one."""
    if not any(schemas):
        return None
    import xgrammar

    vocab_size = _vocab_size(model)
    compiler = _compiler(model.processor.tokenizer, vocab_size, _stop_ids(model))
    matchers = [
        xgrammar.GrammarMatcher(_compiled(compiler, schema.text)) if schema else None for schema in schemas
    ]
    return GrammarProcessor(matchers, vocab_size)


def _vocab_size(model: LoadedModel) -> int:
    """The logits' width: the language model's embedding rows (may exceed the tokenizer's vocabulary)."""
    return int(model.model.get_output_embeddings().weight.shape[0])


def _stop_ids(model: LoadedModel) -> tuple[int, ...]:
    """The tokens that end an answer: the generation config's end-of-utterance and end-of-text."""
    eos = model.model.generation_config.eos_token_id
    ids = eos if isinstance(eos, list) else [eos] if eos is not None else []
    return tuple(ids or [model.processor.tokenizer.eos_token_id])


@functools.cache
def _compiler(tokenizer: Any, vocab_size: int, stop_ids: tuple[int, ...]) -> Any:
    """One grammar compiler per tokenizer. It keeps what it compiles up to GRAMMAR_CACHE_BYTES, the least
    recently used going first, so a server sent a new schema with every request keeps flat memory."""
    import xgrammar

    info = xgrammar.TokenizerInfo.from_huggingface(
        tokenizer, vocab_size=vocab_size, stop_token_ids=list(stop_ids)
    )
    return xgrammar.GrammarCompiler(info, cache_limit_bytes=GRAMMAR_CACHE_BYTES)


def _compiled(compiler: Any, schema_text: str) -> Any:
    return compiler.compile_json_schema(schema_text, any_whitespace=False, separators=SEPARATORS)
