"""A compiled decoding step with a static cache: each new token without the eager loop's Python and launches.

transformers compiles a model's forward inside `generate` where its cache is static
(`cache_implementation="static"`) and a `CompileConfig` is given; on CUDA the step then runs as CUDA graphs
(`mode="reduce-overhead"`). A compiled graph holds the shapes it was made for, so the shapes are bucketed:
the cache to a bucket of tokens (`CACHE_BUCKETS`, through `max_cache_len`), and the batch to a bucket of rows
(`BATCH_BUCKETS`), padded with copies of its last row whose answers are dropped and which are marked done
from the first step. A process compiles one graph per pair of buckets, and a request within them never
compiles again. Grammars, stop strings, streaming and per-row cancellation act between steps, outside the
graph, and work as in the eager loop: answers are the same token ids (tests/test_compiling.py).

`LoadedModel.compiled` turns it on (`ModelOptions.compile`; auto: on CUDA, see `devices.pick_compile`).
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import torch

from ..options import ModelOptions

# Tokens a static cache holds, prompt and answer: the smallest bucket that fits a call is used
CACHE_BUCKETS = (1024, 2048, 4096, 8192, 16384, 32768)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)  # rows a compiled step takes: a batch is padded up to one
BACKEND = "inductor"  # torch.compile's; tests count compilations with "eager", which compiles in no time

# A caption run's new tokens from which compiling pays back, by device type (`for_caption`); a run compiles a
# graph for each bucket it meets, about four. cuda: an estimate until benchmarks/gpu.py measures it on a GPU,
# from a compile of about 45 s over the 0.023 s a token saves when an eager step of 0.031 s (256M, H200,
# docs/benchmarks.md) runs 4x faster, as transformers reports on an A100: about 2,000 tokens a graph. The CPU
# has none: benchmarks/compile.py found no reliable win there (docs/benchmarks.md), so auto never compiles.
BREAK_EVEN_TOKENS = {"cuda": 4 * 2_000}


def for_caption(options: ModelOptions, planned_tokens: int) -> ModelOptions:
    """The model options for a caption run of about `planned_tokens` new tokens: auto compiles where the run
    passes its device's break-even (`BREAK_EVEN_TOKENS`; never on a device not measured, such as MPS)."""
    if options.compile != "auto":
        return options
    from .devices import pick_device

    device = pick_device(options.device)[0].type
    pays = planned_tokens >= BREAK_EVEN_TOKENS.get(device, float("inf"))
    return replace(options, compile="on" if pays else "off")


def bucket(size: int, buckets: tuple[int, ...]) -> int:
    """The smallest bucket that holds `size`; `size` itself beyond the largest."""
    return next((each for each in buckets if each >= size), size)


@functools.cache
def _compile_config(device_type: str, backend: str) -> Any:
    from transformers import CompileConfig

    mode = "reduce-overhead" if device_type == "cuda" and backend == "inductor" else None
    config = CompileConfig(fullgraph=False, dynamic=False, backend=backend, mode=mode)
    config._compile_all_devices = True  # transformers compiles on CUDA alone unless told otherwise
    return config


def static_kwargs(device: torch.device, prompt_length: int, max_new_tokens: int) -> dict[str, Any]:
    """`generate`'s arguments for the compiled step: a static cache of the bucket that fits this call."""
    return {
        "cache_implementation": "static",
        "max_cache_len": bucket(prompt_length + max_new_tokens, CACHE_BUCKETS),
        "compile_config": _compile_config(device.type, BACKEND),
    }


def padded(inputs: dict[str, torch.Tensor], rows: int) -> dict[str, torch.Tensor]:
    """The batch's tensors with rows added up to the bucket of `rows`: copies of its last row."""
    extra = bucket(rows, BATCH_BUCKETS) - rows
    if not extra:
        return inputs
    return {
        name: torch.cat([tensor, tensor[-1:].expand(extra, *tensor.shape[1:])])
        for name, tensor in inputs.items()
    }
