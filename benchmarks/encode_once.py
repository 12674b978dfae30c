"""Encoding each video once: a prompt file's prompts, and a follow-up question, against encoding every time.

    python benchmarks/encode_once.py [--arch 256M] [--repeats 3] [--cache-dir DIR] [--baseline-python PYTHON]

The checkpoint: random weights of the real model's shape (`smolvlm_video.testing`), on the CPU in the
dtype `--dtype auto` picks here. Every answer is exactly --tokens new tokens (min_new_tokens forces it).

1. Prompt files: `smolvlm-video caption examples/clips/testsrc2.mp4 --prompt-file F` with 1 prompt and
   with 4, each in its own process, timed by the record's answering seconds (`timings.encode` plus
   `timings.generate`; a checkout without `encode` counts the encoder in `generate`). With
   --baseline-python, the same for another checkout, such as one from before encoding once, in the
   same run. Printed: the median seconds and the ratio of 4 prompts to 1.
2. A follow-up: 8 frames of a 10 s 720p test pattern, one process. The first question's first token
   (a generate call of 1 new token, the cache empty), then a follow-up question's about the same video
   (the first turn and a fixed answer before it), with the features cached, and again with the cache
   emptied first, which is what every turn cost before. Printed: the medians and the ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "examples" / "clips" / "testsrc2.mp4"
PROMPTS = {
    "caption": "Describe this video in detail.",
    "colours": "Which colours do you see?",
    "motion": "What moves, and in which direction?",
    "text": "Is there any text on screen? Write it out.",
}


def answer_seconds(python: str, checkpoint: Path, prompts: int, tokens: int) -> float:
    """One caption run with the first `prompts` prompts: the record's seconds spent answering."""
    with tempfile.TemporaryDirectory() as scratch:
        prompt_file = Path(scratch) / "prompts.json"
        prompt_file.write_text(json.dumps(dict(list(PROMPTS.items())[:prompts])), encoding="utf-8")
        output = Path(scratch) / "out.jsonl"
        command = [python, "-m", "smolvlm_video", "caption", str(CLIP), "-o", str(output), "--quiet"]
        command += ["--model", str(checkpoint), "--prompt-file", str(prompt_file), "--device", "cpu"]
        command += ["--max-new-tokens", str(tokens), "--min-new-tokens", str(tokens), "--batch-size", "4"]
        subprocess.run(command, check=True, cwd=scratch)
        (record,) = map(json.loads, output.read_text(encoding="utf-8").splitlines())
    assert record["status"] == "ok", record["error"]
    return record["timings"].get("encode", 0.0) + record["timings"]["generate"]


def prompt_files(args: argparse.Namespace, checkpoint: Path) -> None:
    pythons = {"this checkout": sys.executable}
    if args.baseline_python:
        pythons["baseline"] = args.baseline_python
    seconds: dict[tuple[str, int], list[float]] = {(name, n): [] for name in pythons for n in (1, 4)}
    for repeat in range(args.repeats):
        print(f"prompt files, repeat {repeat + 1}/{args.repeats} ...", file=sys.stderr, flush=True)
        for name, python in pythons.items():  # interleaved, so a busy spell hits every side alike
            for prompts in (1, 4):
                seconds[name, prompts].append(answer_seconds(python, checkpoint, prompts, args.tokens))
    print(f"\nprompt files: {CLIP.name}, {args.arch}, {args.tokens} new tokens, median of {args.repeats}")
    for name in pythons:
        one, four = (statistics.median(seconds[name, n]) for n in (1, 4))
        runs = ", ".join(f"{s:.2f}" for s in seconds[name, 4])
        print(f"  {name:>13}: 1 prompt {one:6.2f} s, 4 prompts {four:6.2f} s ({runs}): {four / one:.2f}x")


def follow_up(args: argparse.Namespace, checkpoint: Path, scratch: Path) -> None:
    from smolvlm_video import GenerationOptions, ModelOptions, SamplingOptions, sample_video
    from smolvlm_video.model.generate import generate
    from smolvlm_video.model.loading import load_fitted
    from smolvlm_video.model.prompts import Message, chat

    clip = scratch / "720p.mp4"
    pattern = ["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30:duration=10"]
    subprocess.run(["ffmpeg", "-v", "error", "-y", *pattern, "-pix_fmt", "yuv420p", str(clip)], check=True)
    options = ModelOptions(str(checkpoint), device="cpu", dtype=args.dtype)
    model, sampling = load_fitted(options, SamplingOptions(max_frames=8))
    video = sample_video(clip, sampling)
    first = chat("Describe this video in detail.", video)
    later = [*first, Message.assistant("A test pattern with moving colours."), Message.user("What moves?")]
    one = GenerationOptions(max_new_tokens=1, min_new_tokens=1)

    def first_token(messages: list[Message] | object, empty: bool) -> float:
        if empty:
            model.features.clear()
        started = time.perf_counter()
        generate(model, [messages], one)
        return time.perf_counter() - started

    first_token(first, empty=True)  # warm-up
    times: dict[str, list[float]] = {
        "first question": [],
        "follow-up, cached": [],
        "follow-up, encoded again": [],
    }
    for repeat in range(args.repeats):
        print(f"follow-up, repeat {repeat + 1}/{args.repeats} ...", file=sys.stderr, flush=True)
        times["first question"].append(first_token(first, empty=True))
        times["follow-up, cached"].append(first_token(later, empty=False))
        times["follow-up, encoded again"].append(first_token(later, empty=True))
    medians = {name: statistics.median(values) for name, values in times.items()}
    shape = f"{video.frame_count} frames of 1280x720, {args.arch}, {model.dtype}"
    print(f"\nfirst token: {shape}, median of {args.repeats}")
    for name, value in medians.items():
        print(f"  {name:>24}: {value:6.2f} s ({value / medians['first question']:.2f}x the first question)")
    stats = model.features.stats
    print(f"  vision encoder calls: {stats.encoder_calls}, cache hits: {stats.hits}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", default="256M")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "smolvlm-video-bench")
    parser.add_argument(
        "--baseline-python", help="a Python where another checkout of this project is installed"
    )
    parser.add_argument(
        "--only", choices=["prompt-files", "follow-up"], help="run one of the two measurements"
    )
    args = parser.parse_args()
    from caption_throughput import make_checkpoint  # this folder is on the path when a script in it runs

    checkpoint = make_checkpoint(args.cache_dir, args.arch)
    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").exists() else []
    native = sorted({flag for flag in flags if flag in ("avx512_bf16", "amx_bf16", "avx512f", "avx2")})
    print(f"CPU flags that matter for the dtype: {', '.join(native) or 'none'}")
    if args.only != "follow-up":
        prompt_files(args, checkpoint)
    if args.only != "prompt-files":
        with tempfile.TemporaryDirectory() as scratch:
            follow_up(args, checkpoint, Path(scratch))


if __name__ == "__main__":
    main()
