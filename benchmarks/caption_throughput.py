"""Captioning throughput: `smolvlm-video caption` against the loop a model card shows, same run.

    python benchmarks/caption_throughput.py [--arch tiny|256M] [--max-frames N] [--repeats 3]
                                            [--max-new-tokens 16] [--dtype auto] [--cache-dir DIR]
                                            [--methods caption,loop] [--baseline-python PYTHON]

The folder: 12 clips made once with ffmpeg (H.264 test pattern at 30 fps, 10 s to 5 min, 360p, 720p
and 1080p in turn). The checkpoint: random weights built offline with `smolvlm_video.testing`, of the
tiny shape (all the time goes to the host-side pipeline: decoding, preprocessing, batching) or of the
real 256M model's shape (the whole job on the CPU).

Methods, each in its own process, median of the repeats:
- caption: `smolvlm-video caption FOLDER --window-seconds 300`, so that, like the loop, each clip is
  one prompt; rate read from its --json-progress summary line (clips since the model loaded).
- model-card loop: for each clip, processor.apply_chat_template with the video path (the processor
  samples the frames, torchcodec decodes), model.generate, batch_decode.
- baseline (with --baseline-python, a Python where another checkout of this project is installed, such
  as the last release): that checkout's `caption`, the same command, to tell whether a change is slower.

Both: greedy, the same fps and max frames, every answer exactly --max-new-tokens long (min_new_tokens
forces it), the same dtype (default: what `--dtype auto` picks on this CPU, bfloat16 only where it is
native and faster, else float32). caption runs with its default batch size for the device.
Printed: clips per minute once the model is loaded (the figure that matters for a big
folder), the wall time of the whole command, its CPU seconds (user and system: the work done, which
another tenant's load on a shared machine does not change as it changes the rate), and the ratios.
The loop needs torchcodec installed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLIPS = [  # seconds, size: 12 clips, lengths 10 s to 5 min, 360p to 1080p
    (10, "640x360"), (20, "1280x720"), (30, "1920x1080"), (45, "640x360"), (60, "1280x720"),
    (90, "1920x1080"), (120, "640x360"), (150, "1280x720"), (180, "1920x1080"), (240, "640x360"),
    (270, "1280x720"), (300, "1920x1080"),
]  # fmt: skip
PROMPT = "Describe this video in detail."
METHODS = {"caption": "caption", "model-card loop": "loop"}  # method's name -> its word in --methods

LOOP = r"""
import json, sys, time
started = time.perf_counter()
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor
checkpoint, dtype, tokens, fps, max_frames, prompt, *paths = sys.argv[1:]
tokens, fps, max_frames = int(tokens), float(fps), int(max_frames)
processor = AutoProcessor.from_pretrained(checkpoint)
model = AutoModelForImageTextToText.from_pretrained(checkpoint, dtype=getattr(torch, dtype)).eval()
loaded = time.perf_counter()
for path in paths:
    content = [{"type": "video", "path": path}, {"type": "text", "text": prompt}]
    messages = [{"role": "user", "content": content}]
    inputs = processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt",
        do_sample_frames=True, num_frames=max_frames, fps=fps,
    ).to(model.device, dtype=model.dtype)
    with torch.inference_mode():
        ids = model.generate(**inputs, do_sample=False, max_new_tokens=tokens, min_new_tokens=tokens)
    text = processor.batch_decode(ids[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)[0]
finished = time.perf_counter()
print(json.dumps({"clips_per_minute": 60 * len(paths) / (finished - loaded)}))
"""


def make_clips(folder: Path, gop_seconds: float) -> list[Path]:
    """The 12 benchmark clips, made once with ffmpeg: a keyframe every `gop_seconds` (0: x264's default)."""
    folder = folder / (f"gop{gop_seconds:g}s" if gop_seconds else "gop-x264-default")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seconds, size in CLIPS:
        path = folder / f"clip_{seconds:03d}s_{size}.mp4"
        if not path.exists():
            print(f"making {path} ...", file=sys.stderr, flush=True)
            source = f"testsrc2=size={size}:rate=30:duration={seconds}"
            command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, "-c:v", "libx264"]
            command += ["-g", str(round(30 * gop_seconds))] if gop_seconds else []
            command += ["-preset", "veryfast", "-pix_fmt", "yuv420p", f"{path}.part.mp4"]
            subprocess.run(command, check=True)
            os.replace(f"{path}.part.mp4", path)
        paths.append(path)
    return paths


def make_checkpoint(cache: Path, arch: str, dtype: str = "float32") -> Path:
    """A random-weight checkpoint of the given shape, its weights saved in `dtype`, built once."""
    folder = cache / (f"checkpoint-{arch}" if dtype == "float32" else f"checkpoint-{arch}-{dtype}")
    if not folder.exists():  # built under another name first: a build stopped halfway is never taken for one
        print(f"building the {arch} checkpoint in {folder} ...", file=sys.stderr, flush=True)
        part = folder.with_name(folder.name + ".part")
        shutil.rmtree(part, ignore_errors=True)
        command = [sys.executable, "-m", "smolvlm_video.testing", str(part), "--arch", arch]
        subprocess.run([*command, "--dtype", dtype], check=True)
        part.rename(folder)
    return folder


def run_caption(
    folder: Path, checkpoint: Path, args: argparse.Namespace, python: str = sys.executable
) -> dict[str, float]:
    """One `smolvlm-video caption` run by `python`'s smolvlm_video: captioning rate and wall time."""
    with tempfile.TemporaryDirectory() as scratch:
        command = [python, "-m", "smolvlm_video", "caption", str(folder)]
        command += ["-o", f"{scratch}/captions.jsonl", "--model", str(checkpoint), "--json-progress"]
        tokens = str(args.max_new_tokens)
        command += ["--max-new-tokens", tokens, "--min-new-tokens", tokens]
        command += ["--fps", str(args.fps), "--max-frames", str(args.max_frames)]
        command += ["--window-seconds", "300"]
        command += ["--device", "cpu", "--dtype", args.dtype, "--prompt", PROMPT]
        # run outside any checkout: a checkout's own folder would shadow python's installed package
        done, wall, cpu = _timed(command, "caption", cwd=scratch)
        last = json.loads(done.stderr.strip().splitlines()[-1])["summary"]
        if last["captioned"] != len(CLIPS):
            raise RuntimeError(f"caption did not caption every clip: {last}")
    return {"clips_per_minute": last["clips_per_minute"], "wall": wall, "cpu": cpu}


def run_loop(paths: list[Path], checkpoint: Path, args: argparse.Namespace) -> dict[str, float]:
    """One model-card loop run: captioning rate and whole-command wall time."""
    command = [sys.executable, "-c", LOOP, str(checkpoint), args.dtype, str(args.max_new_tokens)]
    command += [str(args.fps), str(args.max_frames), PROMPT, *map(str, paths)]
    done, wall, cpu = _timed(command, "model-card loop")
    rate = json.loads(done.stdout.strip().splitlines()[-1])["clips_per_minute"]
    return {"clips_per_minute": rate, "wall": wall, "cpu": cpu}


def _timed(
    command: list[str], name: str, cwd: str | None = None
) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run one method's command offline: its output, wall time and CPU seconds (user and system, its
    threads and children included), or an error with its stderr."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    before, started = _children_cpu(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd)
    wall, cpu = time.perf_counter() - started, _children_cpu() - before
    if done.returncode:
        raise RuntimeError(f"{name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done, wall, cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--arch", choices=["tiny", "256M", "500M", "2.2B"], default="tiny")
    parser.add_argument("--max-frames", type=int, default=64)
    parser.add_argument("--fps", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", choices=["auto", "bfloat16", "float32"], default="auto")
    parser.add_argument(
        "--gop-seconds", type=float, default=2.0, help="keyframe interval of the clips; 0: x264's default"
    )
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "smolvlm-video-bench")
    parser.add_argument("--methods", default="caption,loop", help="caption, loop, or both (comma-separated)")
    parser.add_argument(
        "--baseline-python", help="a Python with another checkout installed: its caption runs as 'baseline'"
    )
    args = parser.parse_args()
    methods = args.methods.split(",")
    if unknown := set(methods) - set(METHODS.values()):
        parser.error(f"unknown methods: {', '.join(sorted(unknown))}")
    if args.dtype == "auto":
        from smolvlm_video.model.devices import choose

        args.dtype = str(choose("cpu").dtype).removeprefix("torch.")

    paths = make_clips(args.cache_dir / "throughput", args.gop_seconds)
    checkpoint = make_checkpoint(args.cache_dir, args.arch)
    runs = {
        "caption": lambda: run_caption(paths[0].parent, checkpoint, args),
        "model-card loop": lambda: run_loop(paths, checkpoint, args),
        "baseline": lambda: run_caption(paths[0].parent, checkpoint, args, args.baseline_python),
    }
    chosen = [name for name, method in METHODS.items() if method in methods]
    chosen += ["baseline"] if args.baseline_python else []
    results: dict[str, list[dict[str, float]]] = {name: [] for name in chosen}
    for repeat in range(args.repeats):  # interleaved, so drift on the machine hits every method alike
        print(f"repeat {repeat + 1}/{args.repeats} ...", file=sys.stderr, flush=True)
        for name in chosen:
            results[name].append(runs[name]())
    report(results, len(paths), args)


def report(results: dict[str, list[dict[str, float]]], clips: int, args: argparse.Namespace) -> None:
    """Each method's median rate, every repeat's, and caption's ratio to the others."""
    print(f"\n{clips} clips, {args.arch} checkpoint, {args.dtype}, max_frames {args.max_frames}, "
          f"fps {args.fps}, {args.max_new_tokens} new tokens, median of {args.repeats}")  # fmt: skip
    rates, cpus = {}, {}
    for name, measured in results.items():
        rates[name] = statistics.median(r["clips_per_minute"] for r in measured)
        wall = statistics.median(r["wall"] for r in measured)
        cpus[name] = statistics.median(r["cpu"] for r in measured)
        every = ", ".join(f"{r['clips_per_minute']:.1f}" for r in measured)
        print(f"{name:>16}: {rates[name]:7.2f} clips/min ({every}); whole command {wall:6.1f} s, "
              f"{cpus[name]:6.1f} CPU s")  # fmt: skip
    for other in ("model-card loop", "baseline"):
        if "caption" in rates and other in rates:
            print(f"{'caption / ' + other:>26}: {rates['caption'] / rates[other]:.2f}x clips per minute, "
                  f"{cpus['caption'] / cpus[other]:.2f}x the CPU seconds")  # fmt: skip


if __name__ == "__main__":
    main()
