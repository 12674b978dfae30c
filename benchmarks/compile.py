"""The compiled decoding step against the eager loop: per-token time, compile time, and the break-even.

    python benchmarks/compile.py [--arch tiny|256M|500M|2.2B] [--batches 1,8] [--tokens 64] [--dtype auto]
                                 [--device cpu] [--repeats 3] [--cache-dir DIR]

A random-weight checkpoint of the architecture's real shape (`smolvlm_video.testing`), one short image
chat a row. Per batch size, in the same process: the eager loop and the compiled step (`model.compiling`,
inductor; CUDA graphs on CUDA), each timed at 1 and at `--tokens` new tokens (forced), best of the repeats;
a step's cost (a new token for each row) is the difference over the extra tokens, so the prompt and the
vision encoder drop out. The compile time is the first compiled call's time over a warm one's. Printed:
milliseconds a step for each, their ratio, the compile seconds, and the new tokens (steps x rows) after which
compiling has paid for itself.
It is what `--compile auto` follows on the CPU (devices.pick_compile).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def timed(call) -> float:
    started = time.perf_counter()
    call()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", choices=["tiny", "256M", "500M", "2.2B"], default="256M")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "smolvlm-video-bench")
    args = parser.parse_args()

    from smolvlm_video import GenerationOptions
    from smolvlm_video.model.generate import _run
    from smolvlm_video.model.loading import load_model
    from smolvlm_video.model.prompts import TRAINED_STRINGS, chat
    from smolvlm_video.testing import build_checkpoint

    folder = args.cache_dir / f"checkpoint-{args.arch}"
    if not (folder / "config.json").exists():
        build_checkpoint(folder, args.arch)
    model = load_model(str(folder), device=args.device, dtype=args.dtype, compile="on")
    image = Image.fromarray((np.random.default_rng(0).random((384, 512, 3)) * 255).astype("uint8"))
    dtype = str(model.dtype).removeprefix("torch.")
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    print(f"{args.arch}, {model.device}, {dtype}; torch {torch.__version__}, {machine}")

    def run(rows: int, tokens: int) -> float:
        """Seconds for one batch of `rows` chats answered with `tokens` new tokens."""
        options = GenerationOptions(max_new_tokens=tokens, min_new_tokens=tokens)
        return timed(
            lambda: _run(model, [chat("Describe this image.", image)] * rows, options, TRAINED_STRINGS)
        )

    for rows in (int(b) for b in args.batches.split(",")):
        per_step = {}
        for compiled in (False, True):
            model.compiled = compiled
            first = run(rows, args.tokens)  # compiled: with the compile, once a bucket
            short = min(run(rows, 1) for _ in range(args.repeats))
            long = min(run(rows, args.tokens) for _ in range(args.repeats))
            per_step[compiled] = (long - short) / (args.tokens - 1)
            if compiled:
                compile_seconds = first - long
        eager, fast = per_step[False], per_step[True]  # seconds a step: a new token for each row
        saved = eager - fast
        payback = (f"pays back after {rows * compile_seconds / saved:,.0f} new tokens" if saved > 0
                   else "never pays back: no step is faster")  # fmt: skip
        print(f"batch {rows}: eager {1000 * eager:.1f} ms a step, compiled {1000 * fast:.1f} ms "
              f"({eager / fast:.2f}x); compile {compile_seconds:.1f} s; {payback}")  # fmt: skip
        sys.stdout.flush()


if __name__ == "__main__":
    main()
