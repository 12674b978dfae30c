"""What the shot pass of `--split scenes` costs, as a ratio to sampling the same clip.

    python benchmarks/scenes.py [--seconds 210] [--size 1280x720] [--repeats 3] [--cache-dir DIR]

The clip: 14 shots of 15 s from different ffmpeg test sources (testsrc2, smptebars, mandelbrot, ...), joined
with concat and encoded with x264's defaults (B-frames, a keyframe every 250 frames) at 30 fps: a cut
every 15 s, where no keyframe need be.

Timed in this process, interleaved, median of the repeats:
- sampling: the frames of one prompt over the whole clip (`sample_windows` with the default
  options: 64 frames, default snapping), what the clip costs without the shot pass;
- shot pass: `scenes.detect_shots` over the whole clip, as `--split scenes` runs it (non-reference
  frames skipped, frames scaled to 256 px as they are converted);
- shot pass, every frame: the same without skipping non-reference frames, to show what skipping saves;
- PySceneDetect's own pipeline: `open_video(backend="pyav")` and a SceneManager with the same
  ContentDetector and its automatic downscaling, which decodes every frame and converts it at full size.
It also prints the cuts found against the true ones.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SOURCES = ["testsrc2", "smptebars", "mandelbrot", "rgbtestsrc", "testsrc", "smptehdbars", "yuvtestsrc"]
SHOT_SECONDS = 15


def shot_inputs(sources: list[str], seconds: int, size: str) -> tuple[list[str], str]:
    """ffmpeg's inputs and filter graph for shots of SHOT_SECONDS from `sources` in turn, joined as [v]."""
    count = seconds // SHOT_SECONDS
    inputs, links = [], ""
    for number in range(count):
        source = sources[number % len(sources)]
        inputs += ["-f", "lavfi", "-t", str(SHOT_SECONDS), "-i", f"{source}=size={size}:rate=30"]
        links += f"[{number}:v]setsar=1,format=yuv420p[v{number}];"
    return inputs, links + "".join(f"[v{n}]" for n in range(count)) + f"concat=n={count}:v=1:a=0[v]"


def make_clip(cache: Path, seconds: int, size: str) -> Path:
    """A clip of shots from the SOURCES in turn, SHOT_SECONDS each, made once."""
    path = cache / "scenes" / f"shots_{seconds}s_{size}.mp4"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"making {path} ...", file=sys.stderr, flush=True)
    inputs, joined = shot_inputs(SOURCES, seconds, size)
    command = ["ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex", joined, "-map", "[v]"]
    subprocess.run([*command, "-c:v", "libx264", "-pix_fmt", "yuv420p", f"{path}.part.mp4"], check=True)
    os.replace(f"{path}.part.mp4", path)
    return path


def scenedetect_pipeline(path: str) -> list:
    """The shots as PySceneDetect finds them on its own (its PyAV backend, auto downscale)."""
    from scenedetect import ContentDetector, SceneManager, open_video

    manager = SceneManager()
    manager.add_detector(ContentDetector())
    manager.auto_downscale = True
    manager.detect_scenes(open_video(path, backend="pyav"))
    return manager.get_scene_list()


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=210)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "smolvlm-video-bench")
    args = parser.parse_args()

    from smolvlm_video import SamplingOptions, sample_windows
    from smolvlm_video.video import scenes
    from smolvlm_video.video.probe import probe

    info = probe(make_clip(args.cache_dir, args.seconds, args.size))

    methods = {
        "sampling": lambda: list(sample_windows(info, SamplingOptions())),
        "shot pass": lambda: scenes.detect_shots(info),
        "shot pass, every frame": lambda: scenes.detect_shots(info, skip_nonref=False),
        "PySceneDetect's pipeline": lambda: scenedetect_pipeline(info.path),
    }
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    for repeat in range(args.repeats):
        print(f"repeat {repeat + 1}/{args.repeats} ...", file=sys.stderr, flush=True)
        for name, work in methods.items():
            seconds[name].append(timed(work))
    shots = scenes.detect_shots(info)
    truth = list(range(SHOT_SECONDS, args.seconds, SHOT_SECONDS))
    found = [round(shot.start, 2) for shot in shots[1:]]
    facts = f"{info.duration:.0f} s, {info.width}x{info.height}, {info.codec}"
    print(f"\n{info.path}: {facts}; median of {args.repeats}")
    base = statistics.median(seconds["sampling"])
    for name, values in seconds.items():
        median = statistics.median(values)
        every = ", ".join(f"{v:.2f}" for v in values)
        print(f"{name:>24}: {median:6.2f} s ({every}); {median / base:.2f}x sampling")
    off = max((min(abs(f - t) for f in found) for t in truth), default=0.0) if found else float("nan")
    print(
        f"cuts: {len(found)} found, {len(truth)} true; the farthest true cut is {off:.2f} s from a found one"
    )


if __name__ == "__main__":
    main()
