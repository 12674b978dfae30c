"""Sampling benchmark: 64 frames spread over a whole video, our sampler against the usual loaders.

    python benchmarks/sampling.py [--kinds x264-default,...] [--lengths 30,210,600] [--repeats 3]
                                  [--methods ...] [--cache-dir DIR]

Clips, made once with ffmpeg from a 30 fps test pattern (`pip install 'smolvlm-video[bench]'` brings
torchcodec for its baseline; decord comes with the project on x86-64):

- x264-default: H.264, 1280x720, libx264's defaults (preset medium: a keyframe every 250 frames,
  3 B-frames in a normal B-pyramid)
- x264-gop2s:   H.264, 1280x720, a keyframe every 2 s (preset veryfast, B-frames as its default)
- x264-gop1s:   H.264, 1920x1080, a keyframe every second, as phones write (preset veryfast)
- hevc:         HEVC, 1920x1080, libx265's defaults but its fastest preset (keyframes every 250, B-frames)
- vp9:          VP9 in WebM, 1280x720, libvpx's realtime mode (hidden alt-ref frames, no B-frames)

each 30 s, 210 s and 600 s long. Every method runs in its own process, so its peak RSS is its own
(interpreter and imports included: "imports MB" is that process with the work left out). Times are
the median of the repeats, in the same run, the methods interleaved.

Methods:
- ours default: smolvlm_video.sample_video with snapping (a frame may move up to 1 s onto a keyframe,
  or within a third of the gap to its neighbours onto an I or P frame), frames scaled to 512 on decode
- ours exact: the same with snap_seconds=0: the exact evenly spread frames
- transformers load_video pyav / decord: transformers.video_utils.load_video(path, num_frames=64)
- torchcodec exact: VideoDecoder(seek_mode="exact").get_frames_at(64 evenly spread indices)
- decord get_batch: VideoReader(...).get_batch(64 evenly spread indices)
- limit: the least decoding that yields the frames "ours default" takes (`limit` below): for each
  keyframe interval holding one, seek to its keyframe and decode up to its last, skipping every
  non-reference frame but the frames taken (FFmpeg's skip_frame, as ours does), the intervals shared
  out to one decoder per core as ours does, with no scaling, no colour conversion and no per-frame
  work in Python beyond the loop. Which frames to take is worked out first, untimed, by running
  ours default in a process of its own (`frames_taken`).

Printed per clip: seconds, peak MB, imports MB and frames for each method; then ours default and
ours exact against the best baseline, ours default against the limit, and the limit against the best
baseline (the most any sampler of those frames could gain).
"""

from __future__ import annotations

import argparse
import bisect
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

KINDS = {  # name: (size, codec arguments, container extension)
    "x264-default": ("1280x720", ["-c:v", "libx264", "-preset", "medium"], "mp4"),
    "x264-gop2s": ("1280x720", ["-c:v", "libx264", "-preset", "veryfast", "-g", "60"], "mp4"),
    "x264-gop1s": ("1920x1080", ["-c:v", "libx264", "-preset", "veryfast", "-g", "30"], "mp4"),
    "hevc": ("1920x1080", ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"],
             "mp4"),
    "vp9": ("1280x720", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1",
                         "-b:v", "2M"], "webm"),
}  # fmt: skip
LENGTHS = (30, 210, 600)
FRAMES = 64
BASELINES = ("transformers load_video pyav", "transformers load_video decord", "torchcodec exact",
             "decord get_batch")  # fmt: skip

_SETUP = "import os, sys, time\n"
_OURS = "from smolvlm_video import SamplingOptions, sample_video\n"
_WHOLE = "fps=100, max_frames=64, frame_side=512, window_seconds=604800"  # one window (up to a week)
_TIMED = {  # method: (imports and set-up, timed work that sets n, the frames it got)
    "ours default": (_OURS, f"v = sample_video(PATH, SamplingOptions({_WHOLE})); n = v.frame_count\n"),
    "ours exact": (
        _OURS,
        f"v = sample_video(PATH, SamplingOptions({_WHOLE}, snap_seconds=0)); n = v.frame_count\n",
    ),
    "transformers load_video pyav": (
        "from transformers.video_utils import load_video\n",
        "v, meta = load_video(PATH, num_frames=64, backend='pyav'); n = len(v)\n",
    ),
    "transformers load_video decord": (
        "from transformers.video_utils import load_video\n",
        "v, meta = load_video(PATH, num_frames=64, backend='decord'); n = len(v)\n",
    ),
    "torchcodec exact": (
        "from torchcodec.decoders import VideoDecoder\n",
        "d = VideoDecoder(PATH, seek_mode='exact', num_ffmpeg_threads=0)\n"
        "count = d.metadata.num_frames\n"
        "indices = [round(i * (count - 1) / 63) for i in range(64)]\n"
        "v = d.get_frames_at(indices=indices).data; n = len(v)\n",
    ),
    "decord get_batch": (
        "import decord, numpy as np\n",
        "r = decord.VideoReader(PATH, num_threads=0)\n"
        "indices = np.linspace(0, len(r) - 1, 64).round().astype(int).tolist()\n"
        "v = r.get_batch(indices).asnumpy(); n = len(v)\n",
    ),
    "limit": (
        "sys.path.insert(0, BENCHMARKS)\nimport av, sampling, smolvlm_video.video.decode\n"
        "taken = sampling.frames_taken(PATH)\n",
        "n = sampling.limit(PATH, taken)\n",
    ),
}


def frames_taken(path: str) -> list[float]:
    """The times of the frames ours default takes, worked out in a process of their own, so that the
    limit's process starts as cold as every other method's."""
    code = f"from smolvlm_video import SamplingOptions, sample_video\nprint(list(sample_video({path!r}, "
    code += f"SamplingOptions({_WHOLE})).timestamps))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [float(time) for time in done.stdout.strip()[1:-1].split(",")]


def limit(path: str, taken: Sequence[float]) -> int:
    """Decode only what the frames at `taken` (seconds from the stream's start) depend on; the frames reached.

    For each keyframe interval holding a frame taken: seek to its keyframe and decode up to its last
    frame taken, every non-reference frame skipped but the frames taken. The intervals go to one
    single-threaded decoder per core, each taking the next one free (FFmpeg's frame threading where
    there is one interval), as ours does; nothing is scaled or converted.
    """
    import av

    from smolvlm_video.video.decode import usable_cores
    from smolvlm_video.video.probe import stream_origin
    from smolvlm_video.video.pyav_decoder import _inside_gop, keyframe_times

    with av.open(path) as container:
        stream = container.streams.video[0]
        time_base = float(stream.time_base)
        origin = stream_origin(stream)
        keys = keyframe_times(container, stream) or [origin]
    wanted = sorted(origin + t for t in taken)
    goals: dict[float, float] = {}  # keyframe -> the last frame taken in its interval
    for time in wanted:
        key = keys[max(0, bisect.bisect_right(keys, time + 1e-3) - 1)]
        goals[key] = max(goals.get(key, 0.0), time)
    intervals = iter(sorted(goals.items()))
    lanes, lock = min(usable_cores(), len(goals)), threading.Lock()

    def lane() -> int:
        reached = 0
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type, stream.codec_context.thread_count = ("NONE", 1) if lanes > 1 else ("AUTO", 0)
            while True:
                with lock:
                    key, goal = next(intervals, (None, None))
                if key is None:
                    return reached
                container.seek(int(_inside_gop(keys, key) / time_base), stream=stream, backward=True)
                for packet in container.demux(stream):
                    time = None if packet.pts is None else packet.pts * time_base
                    near = bisect.bisect_left(wanted, (time or 0.0) - 1e-3)
                    taken_here = time is None or (near < len(wanted) and abs(wanted[near] - time) < 1e-3)
                    stream.codec_context.skip_frame = "DEFAULT" if taken_here else "NONREF"
                    if any(f.time is not None and f.time >= goal - 1e-3 for f in packet.decode()):
                        reached += 1
                        break

    with ThreadPoolExecutor(lanes) as pool:
        reached = sum(pool.map(lambda _: lane(), range(lanes)))
    return len(taken) if reached == len(goals) else -1


def make_clip(folder: Path, kind: str, seconds: int) -> Path:
    """One benchmark clip, made once."""
    size, codec, extension = KINDS[kind]
    path = folder / f"{kind}_{seconds}s_{size}.{extension}"
    if not path.exists():
        print(f"making {path} ...", file=sys.stderr, flush=True)
        source = f"testsrc2=size={size}:rate=30:duration={seconds}"
        command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, *codec, "-pix_fmt", "yuv420p"]
        subprocess.run([*command, f"{path}.part.{extension}"], check=True)
        os.replace(f"{path}.part.{extension}", path)
    return path


def run_once(method: str, path: Path, work: bool = True) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, frames) of one method in a fresh process."""
    imports, body = _TIMED[method]
    code = _SETUP + f"PATH = {str(path)!r}\nBENCHMARKS = {str(Path(__file__).parent)!r}\n" + imports
    code += "_started = time.perf_counter()\n" + (body if work else "n = 0\n")
    code += "print(time.perf_counter() - _started, n)\n"
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        out.seek(0)
        err.seek(0)
        text = out.read().split()
        if status != 0 or len(text) < 2:
            raise RuntimeError(f"{method} failed on {path.name}: {err.read()[-500:]}")
    return float(text[0]), usage.ru_maxrss / 1024, int(text[1])


def bench_clip(path: Path, methods: list[str], repeats: int) -> dict[str, float]:
    """Print one row per method for one clip; the median seconds of each method that ran."""
    runs: dict[str, list[tuple[float, float, int]]] = {method: [] for method in methods}
    failed: dict[str, str] = {}
    for _ in range(repeats):  # interleaved, so drift on the machine hits every method alike
        for method in methods:
            if method in failed:
                continue
            try:
                runs[method].append(run_once(method, path))
            except RuntimeError as error:
                failed[method] = str(error)
    seconds = {}
    for method in methods:
        if method in failed:
            print(f"  {method:<31} failed: {failed[method]}", flush=True)
            continue
        seconds[method] = statistics.median(r[0] for r in runs[method])
        peak = max(r[1] for r in runs[method])
        base = run_once(method, path, work=False)[1]
        frames = runs[method][0][2]
        print(f"  {method:<31} {seconds[method]:8.2f} {peak:8.0f} {base:10.0f} {frames:6d}", flush=True)
    return seconds


def report(seconds: dict[str, float]) -> None:
    baselines = {m: s for m, s in seconds.items() if m in BASELINES}
    if baselines:
        best = min(baselines, key=baselines.get)
        for ours in ("ours default", "ours exact"):
            if ours in seconds:
                print(f"  {ours} is {baselines[best] / seconds[ours]:.2f}x the best baseline ({best})")
    if "ours default" in seconds and "limit" in seconds:
        print(f"  ours default takes {seconds['ours default'] / seconds['limit']:.2f}x the limit")
    if baselines and "limit" in seconds:  # what no sampler of these frames can beat, scaling aside
        print(f"  the limit is {baselines[best] / seconds['limit']:.2f}x the best baseline")


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "smolvlm-video-bench")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated clip kinds")
    parser.add_argument("--lengths", default=",".join(map(str, LENGTHS)), help="comma-separated seconds")
    parser.add_argument("--methods", default=",".join(_TIMED), help="comma-separated method names")
    args = parser.parse_args()
    methods = args.methods.split(",")
    folder = args.cache_dir / "sampling"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"  {'method':<31} {'seconds':>8} {'peak MB':>8} {'imports MB':>10} {'frames':>6}")
    for kind in args.kinds.split(","):
        for seconds in map(int, args.lengths.split(",")):
            path = make_clip(folder, kind, seconds)
            print(f"{kind}, {seconds} s, {KINDS[kind][0]}:", flush=True)
            report(bench_clip(path, methods, args.repeats))


if __name__ == "__main__":
    main()
