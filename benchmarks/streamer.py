"""What streaming costs a decoding step: the streamer's host work for a batch, without the model.

`generate` hands the streamer each step's new tokens; it copies them to the host, decodes each row's new
text and hands it on. This times that work alone for a batch of `--rows` answers of `--tokens` tokens
(random ids of the tiny checkpoint's byte-level BPE tokenizer), and checks that the pieces join to the
whole answer. Run it with another checkout's Python (`--baseline-python`) to compare in the same run:

    python benchmarks/streamer.py --baseline-python /tmp/head-python
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace


def measure(rows: int, tokens: int, repeats: int) -> dict[str, float]:
    import torch
    from transformers import AutoTokenizer

    from smolvlm_video.model.generate import _RowStreamer
    from smolvlm_video.testing import build_checkpoint

    with tempfile.TemporaryDirectory() as folder:
        tokenizer = AutoTokenizer.from_pretrained(build_checkpoint(folder))
    special = set(tokenizer.all_special_ids)
    vocab = [i for i in range(len(tokenizer)) if i not in special]
    rng = random.Random(0)
    steps = torch.tensor([[rng.choice(vocab) for _ in range(rows)] for _ in range(tokens)])
    model = SimpleNamespace(
        model=SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=tokenizer.eos_token_id)),
        processor=SimpleNamespace(tokenizer=tokenizer),
    )
    times = []
    for _ in range(repeats):
        pieces: list[list[str]] = [[] for _ in range(rows)]
        streamer = _RowStreamer(model, rows, lambda row, piece, pieces=pieces: pieces[row].append(piece))
        streamer.put(torch.zeros(rows, 4, dtype=torch.long))  # the prompt
        started = time.perf_counter()
        for step in steps:
            streamer.put(step.reshape(rows, 1))
        streamer.end()
        times.append(time.perf_counter() - started)
        joined = all("".join(pieces[row]) == streamer.text(row) for row in range(rows))
    seconds = statistics.median(times)
    return {"seconds": seconds, "ms_per_step": seconds / tokens * 1e3, "joined": joined}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-python", help="another checkout's Python, measured in the same run")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one measurement, as JSON
    args = parser.parse_args()
    if args.json:
        print(json.dumps(measure(args.rows, args.tokens, args.repeats)))
        return
    runs = {"this checkout": sys.executable}
    if args.baseline_python:
        runs["baseline"] = args.baseline_python
    here = Path(__file__).resolve()
    flags = ["--rows", str(args.rows), "--tokens", str(args.tokens), "--repeats", str(args.repeats), "--json"]
    results = {}
    for name, python in runs.items():
        out = subprocess.run([python, str(here), *flags], check=True, capture_output=True, text=True)
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"batch of {args.rows} rows, {args.tokens} new tokens each, median of {args.repeats}")
    print("| run | streamer seconds | ms a step | pieces join to the answer |")
    print("|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['seconds']:.3f} | {r['ms_per_step']:.3f} | {r['joined']} |")
    if "baseline" in results:
        ratio = results["baseline"]["seconds"] / results["this checkout"]["seconds"]
        print(f"ratio (baseline / this checkout): {ratio:.1f}x")


if __name__ == "__main__":
    main()
