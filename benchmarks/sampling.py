"""Sampling benchmark: 64 frames from videos of three sizes, our sampler against transformers' loaders.

    python benchmarks/sampling.py [--cache-dir DIR] [--repeats 3] [--only 30s,210s,600s]

Videos are made once with ffmpeg (H.264, libx264's default GOP of 250 frames, 30 fps test pattern):
30 s 640x360, 210 s 1280x720, 600 s 1920x1080. Each method runs in its own process so its peak RSS is
its own; the figure includes the interpreter and the method's imports (torch for transformers' paths),
printed on its own as "imports MB". Times are the median of the repeats, all in the same run.

Methods:
- ours: smolvlm_video.sample_video (decord up to 720p, PyAV above; frames scaled to 512 on decode)
- transformers load_video: transformers.video_utils.load_video(path, num_frames=64), its default backend
- transformers processor: SmolVLMVideoProcessor sampling the path itself (do_sample_frames=True, 64 frames)
- decord get_batch: plain decord, all 64 frames at full resolution in one get_batch
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

VIDEOS = {  # name: (seconds, size)
    "30s": (30, "640x360"),
    "210s": (210, "1280x720"),
    "600s": (600, "1920x1080"),
}
FRAMES = 64

_SETUP = "import os, sys, time, resource\n"
_TIMED = {
    "ours": (
        "from smolvlm_video import SamplingOptions, sample_video\n",
        "v = sample_video(PATH, SamplingOptions(fps=100, max_frames=64, frame_side=512))\n"
        "n = v.frame_count\n",
    ),
    "transformers load_video": (
        "from transformers.video_utils import load_video\n",
        "v, meta = load_video(PATH, num_frames=64); n = len(v)\n",
    ),
    "transformers processor": (
        "from transformers import SmolVLMVideoProcessor\n"
        "proc = SmolVLMVideoProcessor(video_sampling={'fps': 1, 'max_frames': 64, "
        "'video_size': {'longest_edge': 512}}, max_image_size={'longest_edge': 512})\n",
        "out = proc(videos=[PATH], do_sample_frames=True, num_frames=64, fps=None, return_tensors='pt')\n"
        "n = out['pixel_values'].shape[1]\n",
    ),
    "decord get_batch": (
        "import decord, numpy as np\n",
        "r = decord.VideoReader(PATH, num_threads=0)\n"
        "indices = np.linspace(0, len(r) - 1, 64).round().astype(int).tolist()\n"
        "v = r.get_batch(indices).asnumpy(); n = len(v)\n",
    ),
}


def make_videos(folder: Path, names: list[str]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in names:
        seconds, size = VIDEOS[name]
        path = folder / f"bench_{name}_{size}.mp4"
        if not path.exists():
            print(f"making {path} ...", file=sys.stderr, flush=True)
            source = f"testsrc2=size={size}:rate=30:duration={seconds}"
            subprocess.run(
                [
                    "ffmpeg",
                    "-v",
                    "error",
                    "-y",
                    "-f",
                    "lavfi",
                    "-i",
                    source,
                    "-c:v",
                    "libx264",
                    "-preset",
                    "veryfast",
                    "-pix_fmt",
                    "yuv420p",
                    str(path) + ".part.mp4",
                ],
                check=True,
            )
            os.replace(str(path) + ".part.mp4", path)
        paths[name] = path
    return paths


def run_once(method: str, path: Path, work: bool = True) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, frames) of one method in a fresh process."""
    imports, body = _TIMED[method]
    code = _SETUP + imports + f"PATH = {str(path)!r}\n"
    code += "t = time.perf_counter()\n" + (body if work else "n = 0\n")
    code += "print(time.perf_counter() - t, n)\n"
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen([sys.executable, "-c", code], stdout=out)
        _, status, usage = os.wait4(process.pid, 0)
        out.seek(0)
        text = out.read().split()
    if status != 0 or len(text) < 2:
        raise RuntimeError(f"{method} failed on {path}")
    return float(text[0]), usage.ru_maxrss / 1024, int(text[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "smolvlm-video-bench")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default=",".join(VIDEOS), help="comma-separated video names")
    parser.add_argument("--methods", default=",".join(_TIMED), help="comma-separated method names")
    args = parser.parse_args()
    paths = make_videos(args.cache_dir, args.only.split(","))
    methods = args.methods.split(",")
    print(f"{'video':>6} {'method':<26} {'seconds':>8} {'peak MB':>8} {'imports MB':>10} {'frames':>6}")
    for name, path in paths.items():
        timings = {}
        for method in methods:
            try:
                runs = [run_once(method, path) for _ in range(args.repeats)]
            except RuntimeError as error:
                print(f"{name:>6} {method:<26} failed: {error}")
                continue
            seconds = statistics.median(r[0] for r in runs)
            peak = max(r[1] for r in runs)
            base = run_once(method, path, work=False)[1]
            timings[method] = seconds
            row = f"{name:>6} {method:<26} {seconds:8.2f} {peak:8.0f} {base:10.0f} {runs[0][2]:6d}"
            print(row, flush=True)
        if "ours" in timings:
            for method, seconds in timings.items():
                if method != "ours":
                    print(f"{name:>6} speed-up of ours over {method}: {seconds / timings['ours']:.2f}x")


if __name__ == "__main__":
    main()
