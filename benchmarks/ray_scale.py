"""The Ray engine on a big folder of bad files, against the local engine, same run.

    python benchmarks/ray_scale.py [--files 2000] [--repeats 1] [--cache-dir DIR]

A folder of `--files` unreadable files (text named .mp4) is captioned by `smolvlm-video caption` with
`--engine local` and with `--engine ray` (a local Ray started by the command), each in its own
process, on the tiny random-weight checkpoint. Every file becomes an error record; the time is the
whole command's wall time (model load and Ray's start included), median of the repeats. Goal: Ray
within 3x of the local engine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_folder(cache: Path, files: int) -> Path:
    folder = cache / f"unreadable-{files}"
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(files):
        path = folder / f"bad{index:05d}.mp4"
        if not path.exists():
            path.write_text(f"not a video, number {index}\n")
    return folder


def make_checkpoint(cache: Path) -> Path:
    folder = cache / "checkpoint-tiny"
    if not (folder / "config.json").exists():
        subprocess.run([sys.executable, "-m", "smolvlm_video.testing", str(folder)], check=True)
    return folder


def run(folder: Path, checkpoint: Path, engine: str, files: int) -> float:
    """One caption run's wall time; checks that every file got its error record."""
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch, "captions.jsonl")
        command = [sys.executable, "-m", "smolvlm_video", "caption", str(folder), "-o", str(output)]
        command += ["--model", str(checkpoint), "--engine", engine, "--quiet"]
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env.update(HF_HUB_OFFLINE="1", RAY_AUTH_MODE="disabled")
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        records = [json.loads(line) for line in output.read_text().splitlines()]
    if done.returncode != 1 or len(records) != files or any(r["status"] != "error" for r in records):
        raise RuntimeError(f"{engine}: exit {done.returncode}, {len(records)} records\n{done.stderr[-3000:]}")
    return wall


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "smolvlm-video-bench")
    args = parser.parse_args()
    folder = make_folder(args.cache_dir, args.files)
    checkpoint = make_checkpoint(args.cache_dir)
    times: dict[str, list[float]] = {"local": [], "ray": []}
    for _ in range(args.repeats):  # interleaved, so drift on the machine hits both alike
        for engine in times:
            times[engine].append(run(folder, checkpoint, engine, args.files))
    print(f"\n{args.files} unreadable files, whole command, median of {args.repeats}")
    for engine, walls in times.items():
        print(f"{engine:>6}: {statistics.median(walls):6.1f} s ({', '.join(f'{w:.1f}' for w in walls)})")
    ratio = statistics.median(times["ray"]) / statistics.median(times["local"])
    print(f" ratio: {ratio:.2f}x the local engine's time (goal: at most 3x)")


if __name__ == "__main__":
    main()
