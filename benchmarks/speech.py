"""What `--speech record` costs `smolvlm-video caption`: peak memory, flat in a clip's length, and time.

    python benchmarks/speech.py [--speech-archs whisper-small,whisper-turbo] [--model-arch 256M]
                                [--minutes 10,60] [--every 60] [--cache-dir DIR]

Clips made once with ffmpeg: a 320x240 test pattern at 2 fps with speech (an espeak-ng sentence, about
4 s, once every `--every` seconds, silence between), `--minutes` long. Checkpoints: random weights of
Whisper small's and large-v3-turbo's shapes (`python -m smolvlm_video.testing DIR --arch whisper-small`),
so compute and memory are theirs; their words are noise, and each voiced span is decoded to its token
limit, the worst case. Each run is `smolvlm-video caption` in its own process (default workers and batch
size, 16 frames a window), its peak RSS read with os.wait4 when it ends:

- without speech and with `--speech record` for each speech shape, on the first clip length: peak RSS
  (goal: at most 1.3x without) and clips a minute;
- with `--speech record` on each clip length, with the first speech shape: peak RSS (goal: flat, the
  longest at most 1.3x the shortest).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from caption_throughput import make_checkpoint  # benchmarks/, beside this script
from machine import cpu_name

GOAL = 1.3
SENTENCE = "The speaker describes the scene, then points at the red car that turns left at the crossing."


def make_clip(folder: Path, minutes: int, every: int) -> Path:
    """A test pattern with a sentence every `every` seconds, made once."""
    path = folder / f"speech_{minutes}min_every{every}s.mp4"
    if path.exists():
        return path
    print(f"making {path} ...", file=sys.stderr, flush=True)
    wav = folder / "sentence.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), SENTENCE], check=True)
    seconds = minutes * 60
    video = f"testsrc2=size=320x240:rate=2:duration={seconds}"
    audio = f"[1:a]apad=whole_dur={every},aloop=loop=-1:size={every * 22050},atrim=duration={seconds}[a]"
    command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", video, "-i", str(wav)]
    command += [
        "-filter_complex",
        audio,
        "-map",
        "0:v",
        "-map",
        "[a]",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
    ]
    command += ["-pix_fmt", "yuv420p", "-c:a", "aac", "-t", str(seconds), f"{path}.part.mp4"]
    subprocess.run(command, check=True)
    os.replace(f"{path}.part.mp4", path)
    return path


def caption(clip: Path, checkpoint: Path, speech: Path | None) -> dict[str, float]:
    """One caption run: peak RSS (MB), wall seconds, and the record's speech seconds and segments."""
    import json

    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch, "captions.jsonl")
        command = [sys.executable, "-m", "smolvlm_video", "caption", str(clip), "-o", str(out)]
        command += ["--model", str(checkpoint), "--max-frames", "16", "--max-new-tokens", "16", "--quiet"]
        if speech is not None:
            command += ["--speech", "record", "--speech-model", str(speech)]
        started = time.perf_counter()
        process = subprocess.Popen(command, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"caption failed: {process.stderr.read().decode()[-3000:]}")
        record = json.loads(out.read_text().splitlines()[0])
    if record["status"] != "ok":
        raise RuntimeError(f"caption failed: {record['error']}")
    segments = len((record.get("speech") or {}).get("segments") or [])
    speech_seconds = record["timings"].get("speech") or 0.0
    return {"peak_mb": usage.ru_maxrss / 1024, "seconds": wall, "speech_seconds": speech_seconds,
            "segments": segments}  # fmt: skip


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--speech-archs", default="whisper-small,whisper-turbo")
    parser.add_argument("--model-arch", default="256M")
    parser.add_argument("--minutes", default="10,60")
    parser.add_argument("--every", type=int, default=60, help="seconds between two spoken sentences")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "smolvlm-video-bench")
    args = parser.parse_args()
    folder = args.cache_dir / "speech"
    folder.mkdir(parents=True, exist_ok=True)
    lengths = [int(m) for m in args.minutes.split(",")]
    clips = {minutes: make_clip(folder, minutes, args.every) for minutes in lengths}
    model = make_checkpoint(args.cache_dir, args.model_arch)
    shapes = {arch: make_checkpoint(args.cache_dir, arch) for arch in args.speech_archs.split(",")}
    print(f"{cpu_name()}, {os.cpu_count()} cores; SmolVLM {args.model_arch} "
          f"shape, 16 frames a window, 16 new tokens; a sentence every {args.every} s")  # fmt: skip
    print("| clip | speech | peak RSS MB | seconds | clips/min | speech seconds | segments |")
    print("|---|---|---|---|---|---|---|")
    first = lengths[0]
    runs = [
        (first, None),
        *[(first, arch) for arch in shapes],
        *[(m, next(iter(shapes))) for m in lengths[1:]],
    ]
    results = {}
    for minutes, arch in runs:
        r = results[minutes, arch] = caption(clips[minutes], model, shapes[arch] if arch else None)
        cells = [f"{minutes} min", arch or "off", f"{r['peak_mb']:.0f}", f"{r['seconds']:.1f}",
                 f"{60 / r['seconds']:.2f}", f"{r['speech_seconds']:.1f}", r["segments"]]  # fmt: skip
        print("| " + " | ".join(map(str, cells)) + " |", flush=True)
    off = results[first, None]
    for arch in shapes:
        on = results[first, arch]
        memory, time_ratio = on["peak_mb"] / off["peak_mb"], on["seconds"] / off["seconds"]
        print(f"{arch}: peak RSS {memory:.2f}x without speech (goal: at most {GOAL}x), "
              f"time {time_ratio:.2f}x without")  # fmt: skip
    if len(lengths) > 1:
        arch = next(iter(shapes))
        ratio = results[lengths[-1], arch]["peak_mb"] / results[first, arch]["peak_mb"]
        print(f"{arch}: peak RSS {lengths[-1]} min / {first} min: {ratio:.2f}x (goal: at most {GOAL}x, flat)")


if __name__ == "__main__":
    main()
