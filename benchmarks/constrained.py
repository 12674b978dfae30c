"""What constraining answers to a JSON schema costs per new token: xgrammar and llguidance against none.

    python benchmarks/constrained.py [--arch 256M] [--tokens 64] [--repeats 5] [--cache-dir DIR]

The checkpoint: random weights of the real 256M shape (`smolvlm_video.testing`), on the CPU in what
`--dtype auto` picks here. The prompt: a text-only chat, so the time is the language model's decoding.
The schema: {"caption": a string of at least 2000 characters}, so every constrained answer runs to
exactly --tokens new tokens, like the unconstrained one (min_new_tokens forces it there).

Each method, interleaved, median of the repeats: the seconds of a generate call with --tokens new tokens,
minus those of a call with 1 (the prompt's prefill), divided by the tokens after the first. Both grammar
libraries run through the same logits processor (`smolvlm_video.model.grammar.GrammarProcessor`), xgrammar's
GrammarMatcher or an llguidance LLMatcher behind the same three methods. Since whole-token times on a
busy CPU vary by more than the grammar costs, the time spent inside the processor (accepting the
token, filling the mask, masking the logits) is also measured on its own, per token.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

SCHEMA = {
    "type": "object",
    "properties": {"caption": {"type": "string", "minLength": 2000}},
    "required": ["caption"],
}


class LlguidanceMatcher:
    """An llguidance LLMatcher behind xgrammar.GrammarMatcher's three methods."""

    def __init__(self, tokenizer, schema_text: str) -> None:
        import llguidance

        grammar = llguidance.LLMatcher.grammar_from_json_schema(
            schema_text, defaults={"whitespace_flexible": False}
        )
        self.matcher = llguidance.LLMatcher(tokenizer, grammar)

    def fill_next_token_bitmask(self, bitmask, index: int) -> None:
        import llguidance.torch

        llguidance.torch.fill_next_token_bitmask(self.matcher, bitmask, index)

    def accept_token(self, token_id: int) -> bool:
        return self.matcher.consume_token(token_id)

    def is_terminated(self) -> bool:
        return self.matcher.is_stopped()


class Timed:
    """A logits processor that adds the seconds spent in it to `spent`."""

    def __init__(self, processor, spent: list[float]) -> None:
        self.processor, self.spent = processor, spent

    def __call__(self, input_ids, scores):
        started = time.perf_counter()
        scores = self.processor(input_ids, scores)
        self.spent.append(time.perf_counter() - started)
        return scores


def processors(model, schema):
    """method name -> a function that makes a fresh logits processor for one generate call (None: none)."""
    import llguidance.hf
    import xgrammar

    from smolvlm_video.model import grammar

    vocab = grammar._vocab_size(model)
    compiler = grammar._compiler(model.processor.tokenizer, vocab, grammar._stop_ids(model))
    compiled = grammar._compiled(compiler, schema.text)
    lltok = llguidance.hf.from_tokenizer(
        model.processor.tokenizer, n_vocab=vocab, eos_token=list(grammar._stop_ids(model))
    )
    return {
        "none": lambda: None,
        "xgrammar": lambda: grammar.GrammarProcessor([xgrammar.GrammarMatcher(compiled)], vocab),
        "llguidance": lambda: grammar.GrammarProcessor([LlguidanceMatcher(lltok, schema.text)], vocab),
    }


def timed_generate(model, messages, make, tokens: int, spent: list[float] | None = None) -> float:
    import torch
    from transformers import LogitsProcessorList

    from smolvlm_video.model.generate import _embedded, _inputs
    from smolvlm_video.model.prompts import TRAINED_STRINGS

    batch, held = _inputs(model, [messages], TRAINED_STRINGS)
    processor = make()
    kwargs = {
        "max_new_tokens": tokens,
        "do_sample": False,
        "pad_token_id": model.processor.tokenizer.pad_token_id,
    }
    if processor is None:
        kwargs["min_new_tokens"] = tokens
    else:
        kwargs["logits_processor"] = LogitsProcessorList(
            [Timed(processor, spent if spent is not None else [])]
        )
    started = time.perf_counter()
    with torch.inference_mode():
        output = model.model.generate(**_embedded(model, batch, held), **kwargs)
    seconds = time.perf_counter() - started
    produced = output.shape[1] - batch.inputs["input_ids"].shape[1]
    if produced != tokens:
        raise RuntimeError(f"expected {tokens} new tokens, got {produced}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", choices=["tiny", "256M", "500M", "2.2B"], default="256M")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "smolvlm-video-bench")
    args = parser.parse_args()
    from caption_throughput import make_checkpoint

    from smolvlm_video.model.loading import load_model
    from smolvlm_video.model.prompts import chat
    from smolvlm_video.model.schemas import JsonSchema

    model = load_model(str(make_checkpoint(args.cache_dir, args.arch)), device="cpu")
    schema = JsonSchema.from_value(SCHEMA)
    messages = chat(schema.prompt("Describe a busy street in detail."))
    makers = processors(model, schema)
    per_token: dict[str, list[float]] = {name: [] for name in makers}
    inside: dict[str, list[float]] = {name: [] for name in makers}  # seconds in the processor, per token
    for make in makers.values():  # warm-up: first calls, and each library's first grammar
        timed_generate(model, messages, make, 4)
    for repeat in range(args.repeats):
        print(f"repeat {repeat + 1}/{args.repeats} ...", file=sys.stderr, flush=True)
        for name, make in makers.items():
            first = timed_generate(model, messages, make, 1)
            spent: list[float] = []
            whole = timed_generate(model, messages, make, args.tokens, spent)
            per_token[name].append((whole - first) / (args.tokens - 1))
            inside[name].append(sum(spent) / args.tokens)
    base = statistics.median(per_token["none"])
    print(f"\n{args.arch} shape, {model.dtype}, CPU, {args.tokens} new tokens, median of {args.repeats}")
    for name, values in per_token.items():
        median = statistics.median(values)
        every = ", ".join(f"{1000 * v:.2f}" for v in values)
        own = statistics.median(inside[name])
        print(f"{name:>11}: {1000 * median:7.2f} ms a token ({every}); {median / base - 1:+.1%} over none; "
              f"in the processor {1000 * own:.3f} ms a token = {own / base:.2%} of none's token")  # fmt: skip
    print(
        json.dumps(
            {name: [statistics.median(per_token[name]), statistics.median(inside[name])] for name in makers}
        )
    )


if __name__ == "__main__":
    main()
