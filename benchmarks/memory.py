"""Peak memory of `smolvlm-video caption` against a video's length: it should not grow with it.

    python benchmarks/memory.py [--fps 5] [--split fixed|scenes] [--cache-dir DIR]

Clips made once with ffmpeg: 640x360 test pattern, a keyframe every 2 s, 10 minutes and 2 hours
long (at `--fps` frames per second, to keep making them quick; the sampler takes 1 frame a second
whatever the rate). Each run is `smolvlm-video caption` in its own process, with the default
workers and batch size, at frame side 512 (the 256M and 500M models' side), on the tiny
random-weight checkpoint: the model's own memory is small and fixed, so what is measured is the
pipeline's (decoded windows, look-ahead, batches). Peak RSS is the process's own maximum resident
set size, read with os.wait4 when it ends.

Runs: one 10-minute clip, one 2-hour clip, and a folder of four 2-hour clips. Goals: the 2-hour
clip peaks at most 1.25x the 10-minute one, and the folder at most 1.25x the single 2-hour clip.
`--split scenes` runs the same with the shot pass first (the clips have no cut: one shot each, split
into windows as with fixed), to check that it keeps the same bound.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 1.25


def make_clip(folder: Path, seconds: int, fps: int) -> Path:
    """A 640x360 H.264 clip with a keyframe every 2 s, made once."""
    path = folder / f"clip_{seconds}s_640x360_{fps}fps.mp4"
    if not path.exists():
        print(f"making {path} ...", file=sys.stderr, flush=True)
        source = f"testsrc2=size=640x360:rate={fps}:duration={seconds}"
        command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, "-c:v", "libx264"]
        command += ["-g", str(2 * fps), "-preset", "ultrafast", "-pix_fmt", "yuv420p", f"{path}.part.mp4"]
        subprocess.run(command, check=True)
        os.replace(f"{path}.part.mp4", path)
    return path


def make_checkpoint(cache: Path) -> Path:
    folder = cache / "checkpoint-tiny"
    if not (folder / "config.json").exists():
        command = [sys.executable, "-m", "smolvlm_video.testing", str(folder), "--arch", "tiny"]
        subprocess.run(command, check=True)
    return folder


def peak_rss(inputs: list[Path], clips: int, checkpoint: Path, split: str) -> tuple[float, float]:
    """One caption run over `inputs` (`clips` clips): its peak RSS in MB and its wall time in seconds."""
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, "-m", "smolvlm_video", "caption", *map(str, inputs)]
        command += ["-o", f"{scratch}/captions.jsonl", "--model", str(checkpoint), "--frame-side", "512"]
        command += ["--max-new-tokens", "4", "--device", "cpu", "--quiet", "--split", split]
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"caption failed: {process.stderr.read().decode()[-3000:]}")
        records = Path(scratch, "captions.jsonl").read_text().count('"status":"ok"')
        if records != clips:
            raise RuntimeError(f"caption captioned {records} of {clips} clips")
    return usage.ru_maxrss / 1024, wall  # ru_maxrss is in KB on Linux


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--fps", type=int, default=5, help="frame rate of the made clips")
    parser.add_argument("--split", choices=["fixed", "scenes"], default="fixed")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "smolvlm-video-bench")
    args = parser.parse_args()

    folder = args.cache_dir / "memory"
    folder.mkdir(parents=True, exist_ok=True)
    ten_minutes = make_clip(folder, 600, args.fps)
    two_hours = make_clip(folder, 7200, args.fps)
    four = folder / "four-two-hour-clips"
    four.mkdir(exist_ok=True)
    for index in range(4):  # hard links: four clips with their own paths and ids, one file's disk space
        if not (four / f"{index}.mp4").exists():
            os.link(two_hours, four / f"{index}.mp4")
    checkpoint = make_checkpoint(args.cache_dir)

    runs = {
        "10-minute clip": ([ten_minutes], 1),
        "2-hour clip": ([two_hours], 1),
        "four 2-hour clips": ([four], 4),
    }
    peaks = {}
    print(f"\ncaption --split {args.split}, tiny checkpoint, frame side 512, default workers and batch size, "
          f"{args.fps} fps clips")  # fmt: skip
    for name, (inputs, clips) in runs.items():
        peaks[name], wall = peak_rss(inputs, clips, checkpoint, args.split)
        print(f"{name:>18}: peak RSS {peaks[name]:7.0f} MB ({wall:5.1f} s)", flush=True)
    for longer, shorter in (("2-hour clip", "10-minute clip"), ("four 2-hour clips", "2-hour clip")):
        ratio = peaks[longer] / peaks[shorter]
        verdict = "ok" if ratio <= GOAL else f"over the {GOAL}x goal"
        print(f"{longer} / {shorter}: {ratio:.2f}x ({verdict})")


if __name__ == "__main__":
    main()
