"""The compiled decoding's goals on a GPU, in order of importance, inside a time budget.

    python benchmarks/gpu_goals.py [--budget 480] [--out goals.jsonl] [--archs 256M,2.2B] [--clips 16]
                                   [--max-new-tokens 64] [--decode-workers 2,4,8,16] [--cache-dir DIR]
                                   [--device cuda|cpu]

For a GPU lent for minutes: one run that measures, compiled against eager in the same process (peak
memory in a process of its own, holding one model), with random-weight checkpoints of the real shapes
saved in bfloat16 (`python -m smolvlm_video.testing`):

1. a decoding step at batch 1 for each model (the difference between 1 and --max-new-tokens new tokens
   of an 8-frame chat, the shape step 4 asks again, so its compiled step is reused), and the first
   token. Goal: a compiled step at most 1/5 of an eager one;
2. caption (the run API, what `smolvlm-video caption` runs) at 8 frames and batch 8. Goal: compiled at
   least 3x eager's clips a minute;
3. caption at 64 frames and batch 8: the GPU's busy share (goal: 50%), or, where the host is the bound,
   the run's share of the decode-only rate (the caption run's frame decoding alone; goal: 80%); then
   peak GPU memory at batch 1 and 64 frames against the model cards (goal: at most 1.2x);
4. greedy answers on 16 prompts by token ids. Goal: at least 15 of 16 equal; the first divergence of
   the rest;
5. whether compiling the vision encoder pays: seconds a frame eager and compiled at the model's chunk,
   and the compile's seconds (`benchmarks/vision_chunks.py --compile-encoder`);
6. whether more decoding workers keep up better on this machine's cores: the decode-only rate at 64 frames
   for each of --decode-workers (no model; measured once, with the first model's frame side).

Steps run in that order, each model in --archs order within a step, and each result is printed as it is
measured and appended to --out as one JSON line, so a run stopped at its limit keeps what it measured. A
measurement starts only while the time left (of --budget seconds from the start, checkpoints and compiles
included) covers its estimate; else its line says it was not reached, and the run goes on to the next.
One that started may run past the budget: give the command's own limit a margin. A measurement that
fails is reported with its error, and the run goes on. The measuring itself is `benchmarks/gpu.py`'s
(same clips, same methods); this script orders it and keeps time.
`--device cpu --archs tiny` checks the script.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import gpu  # benchmarks/gpu.py: the clips and the measurements
from caption_throughput import make_checkpoint

MIN_SECONDS = 20  # no measurement starts with less left than this
STEP_FRAMES = 8  # step 1's chat: step 4 asks 8-frame chats at batch 1 too, so one compiled step serves both
BATCH = 8  # the caption runs' batch size, or the clips where fewer (a bigger one would compile a size unused)


class Report:
    """Prints each result and appends it to the JSON lines file, with the seconds since the start."""

    def __init__(self, out: Path | None, budget: float) -> None:
        self.out, self.budget, self.started = out, budget, time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return self.budget - self.elapsed

    def write(self, step: str, line: str, **figures: Any) -> None:
        print(f"[{self.elapsed:6.1f} s] {step}: {line}", flush=True)
        if self.out is not None:
            with self.out.open("a") as file:
                record = {"step": step, "line": line, "elapsed": round(self.elapsed, 1), **figures}
                file.write(json.dumps(record) + "\n")

    def attempt(self, step: str, what: str, need: float, measure: Callable[[], None]) -> None:
        """Run `measure` if `need` seconds (the caller's estimate) are left; else say it was not reached.

        A measurement that fails is reported with its error (its traceback on stderr), and the run goes on.
        """
        if self.left() < max(need, MIN_SECONDS):
            self.write(step, f"{what}: not reached ({self.left():.0f} s left of the budget)", reached=False)
            return
        try:
            measure()
        except Exception as error:  # one failed measurement (out of memory, a compile error) ends only itself
            traceback.print_exc()
            self.write(step, f"{what}: failed, {type(error).__name__}: {error}", failed=True)


def step_times(report: Report, arch: str, model, folder: Path, args: argparse.Namespace) -> None:
    """Step 1: a decoding step at batch 1 and the first token, eager then compiled."""
    steps = {}
    for compiled in (False, True):
        model.compiled = compiled
        decoding = "compiled" if compiled else "eager"
        per_frame, steps[decoding] = gpu.unit_costs(model, folder, args, frames=STEP_FRAMES)
        first = STEP_FRAMES * per_frame + steps[decoding]
        step_ms = 1000 * steps[decoding]
        report.write("1 step", f"{arch}, {decoding}: a step {step_ms:.2f} ms at batch 1, first token "
                     f"{first:.3f} s ({STEP_FRAMES} frames)", arch=arch, decoding=decoding, step_ms=step_ms,
                     first_token_s=first)  # fmt: skip
    ratio = steps["compiled"] / steps["eager"]
    report.write("1 step", f"{arch}: compiled/eager {ratio:.3f} (goal: at most 0.20)", arch=arch,
                 ratio=ratio, met=ratio <= 0.2)  # fmt: skip


def caption_rate(
    report: Report, arch: str, model, folder: Path, frames: int, batch: int, args: argparse.Namespace
) -> dict[str, dict]:
    """Caption the clips at `frames` and `batch`, eager then compiled (each warmed up first)."""
    measured = {}
    for compiled in (False, True):
        model.compiled = compiled
        decoding = "compiled" if compiled else "eager"
        gpu.warm_up(model, folder, frames, batch, args)
        result = gpu.run_caption(model, folder, frames, batch, args)
        rate = 60 * args.clips / result["seconds"]
        measured[decoding] = {**result, "clips_per_minute": rate}
        busy = f"{result['busy']:.0%}" if result["busy"] is not None else "n/a"
        peak = f"{result['peak_gb']:.2f} GB" if result["peak_gb"] is not None else "n/a"
        report.write(f"caption {frames} frames", f"{arch}, batch {batch}, {decoding}: {rate:.1f} clips/min, "
                     f"GPU busy {busy}, peak {peak}", arch=arch, frames=frames, batch=batch,
                     decoding=decoding, **measured[decoding])  # fmt: skip
    return measured


def eight_frames(report: Report, arch: str, model, folder: Path, args: argparse.Namespace) -> None:
    """Step 2: caption at 8 frames and batch 8, compiled against eager."""
    batch = min(BATCH, args.clips)
    measured = caption_rate(report, arch, model, folder, 8, batch, args)
    ratio = measured["compiled"]["clips_per_minute"] / measured["eager"]["clips_per_minute"]
    report.write("2 caption", f"{arch}, 8 frames, batch {batch}: compiled {ratio:.2f}x eager (goal: 3x)",
                 arch=arch, batch=batch, ratio=ratio, met=ratio >= 3)  # fmt: skip


def sixty_four_frames(report: Report, arch: str, model, folder: Path, args: argparse.Namespace) -> None:
    """Step 3: at 64 frames and batch 8, busy share or the share of the decode-only rate."""
    from smolvlm_video.batch.prefetch import DEFAULT_WORKERS

    batch = min(BATCH, args.clips)
    measured = caption_rate(report, arch, model, folder, 64, batch, args)
    decode_only = gpu.decode_only(model, folder, 64, DEFAULT_WORKERS, args)
    report.write("3 host", f"{arch}, 64 frames: decode-only {decode_only:.1f} clips/min with "
                 f"{DEFAULT_WORKERS} workers", arch=arch, decode_only=decode_only)  # fmt: skip
    for decoding, result in measured.items():
        share, busy = result["clips_per_minute"] / decode_only, result["busy"]
        met = (busy is not None and busy >= 0.5) or share >= 0.8
        busy_text = f"{busy:.0%}" if busy is not None else "n/a"
        report.write("3 host", f"{arch}, 64 frames, batch {batch}, {decoding}: GPU busy {busy_text} (goal "
                     f"50%), {share:.0%} of the decode-only rate (goal where host-bound: 80%)", arch=arch,
                     decoding=decoding, busy=busy, share=share, met=met)  # fmt: skip


def peak_memory(report: Report, arch: str, model, folder: Path, args: argparse.Namespace) -> None:
    """Step 3, second part: peak GPU memory at batch 1 and 64 frames against the model card, eager then
    compiled, measured in a process that holds this model alone (this one holds every model, and the peak
    is the whole process's). What the child measured before the budget ran out is kept."""
    command = [sys.executable, str(Path(__file__).resolve()), "--memory-of", arch, "--device", args.device,
               "--cache-dir", str(args.cache_dir), "--clips", str(args.clips),
               "--max-new-tokens", str(args.max_new_tokens)]  # fmt: skip
    try:
        limit = max(report.left(), MIN_SECONDS)
        done = subprocess.run(command, capture_output=True, text=True, timeout=limit)
        output, failure = done.stdout, done.stderr[-2000:] if done.returncode else None
    except subprocess.TimeoutExpired as stopped:  # its output so far, as bytes
        output, failure = (stopped.stdout or b"").decode(errors="replace"), "stopped at the budget's end"
    card = gpu.MODEL_CARD_GB.get(arch)
    for line in output.splitlines():
        r = json.loads(line)
        if r["peak_gb"] is None or card is None:
            report.write("3 memory", f"{arch}, {r['decoding']}: no card or no GPU peak to compare", arch=arch)
            continue
        ratio = r["peak_gb"] / card
        report.write("3 memory", f"{arch}, batch 1, 64 frames, {r['decoding']}: peak {r['peak_gb']:.2f} GB = "
                     f"{ratio:.2f}x the card's {card} GB (goal: at most 1.2x; vision {r['vision_chunk']} "
                     f"frames a call)", arch=arch, ratio=ratio, met=ratio <= 1.2, **r)  # fmt: skip
    if failure:
        raise RuntimeError(failure)


def memory_of(args: argparse.Namespace) -> None:
    """`--memory-of ARCH`: caption at batch 1 and 64 frames, eager then compiled, in this process alone;
    a JSON line on stdout for each."""
    from smolvlm_video.model.loading import load_model

    checkpoint = make_checkpoint(args.cache_dir, args.memory_of, "bfloat16")
    model = load_model(str(checkpoint), device=args.device)
    folder = gpu.make_clips(args.cache_dir, args.clips)
    for compiled in (False, True):
        model.compiled = compiled
        gpu.warm_up(model, folder, 64, 1, args)
        peak = gpu.run_caption(model, folder, 64, 1, args)["peak_gb"]
        decoding, chunk = "compiled" if compiled else "eager", model.vision_chunk
        print(json.dumps({"decoding": decoding, "peak_gb": peak, "vision_chunk": chunk}), flush=True)


def answers(report: Report, arch: str, model, folder: Path, args: argparse.Namespace) -> None:
    """Step 4: greedy answers, compiled against eager, by token ids."""
    report.write("4 answers", f"{arch}: {gpu.same_answers(model, folder, args)}", arch=arch)


def encoder(report: Report, arch: str, model, folder: Path, args: argparse.Namespace) -> None:
    """Step 5: the vision encoder eager against compiled, at the model's chunk."""
    from vision_chunks import compiled_encoder

    r = compiled_encoder(model)
    compiled, eager = 1000 * r["compiled_s_a_frame"], 1000 * r["eager_s_a_frame"]
    report.write("5 encoder", f"{arch}, {r['chunk']} frames a call: compiled {compiled:.2f} against eager "
                 f"{eager:.2f} ms a frame ({compiled / eager:.2f}x) after a {r['compile_s']:.1f} s compile",
                 arch=arch, ratio=compiled / eager, **r)  # fmt: skip


def workers(report: Report, arch: str, model, folder: Path, args: argparse.Namespace) -> None:
    """Step 6: the decode-only rate at 64 frames for each number of decoding workers."""
    if arch != args.host_arch:
        return  # the host's rate depends on the frame side only: the first model's is enough
    for count in map(int, args.decode_workers.split(",")):
        rate = gpu.decode_only(model, folder, 64, count, args)
        report.write("6 workers", f"decode-only, 64 frames, {count} workers: {rate:.1f} clips/min "
                     f"({os.cpu_count()} CPU cores)", workers=count, decode_only=rate)  # fmt: skip


STEPS = [  # (name, its function, seconds it needs per model before it is worth starting)
    ("1 step", step_times, 60),
    ("2 caption", eight_frames, 60),
    ("3 host", sixty_four_frames, 90),
    ("3 memory", peak_memory, 60),
    ("4 answers", answers, 45),
    ("5 encoder", encoder, 45),
    ("6 workers", workers, 60),
]


def parse_args() -> argparse.Namespace:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--budget", type=float, default=480, help="seconds in which measurements may start")
    parser.add_argument("--out", type=Path, help="JSON lines file the results are appended to")
    parser.add_argument("--archs", default="256M,2.2B")
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--decode-workers", default="2,4,8,16", help="decoding threads to try in step 6")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "smolvlm-video-bench")
    parser.add_argument("--memory-of", help=argparse.SUPPRESS)  # step 3's child: one model's peak memory
    args = parser.parse_args()
    args.compile = "both"  # what benchmarks/gpu.py's measurements read
    return args


def main() -> None:
    args = parse_args()
    report = Report(args.out, args.budget)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("benchmarks/gpu_goals.py needs a CUDA GPU; torch sees none here (--device cpu checks it).")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.memory_of:
        memory_of(args)
        return
    from smolvlm_video.model.loading import load_model

    report.write("0 machine", gpu.machine(args.device))
    folder = gpu.make_clips(args.cache_dir, args.clips)
    models = {}

    def load(arch: str) -> None:
        models[arch] = load_model(str(make_checkpoint(args.cache_dir, arch, "bfloat16")), device=args.device)
        report.write("0 machine", f"{arch} loaded: {', '.join(models[arch].why)}", arch=arch)

    for arch in args.archs.split(","):
        report.attempt("0 machine", f"{arch} load", 0, lambda: load(arch))  # noqa: B023
    args.host_arch = next(iter(models), None)  # step 6 measures the host once, with this model's frames
    for name, measure, need in STEPS:
        for arch, model in models.items():
            report.attempt(name, arch, need, lambda: measure(report, arch, model, folder, args))  # noqa: B023
    report.write("0 machine", f"done in {report.elapsed:.0f} s of a {args.budget:.0f} s budget")


if __name__ == "__main__":
    main()
