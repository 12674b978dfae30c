"""What `smolvlm-video export` costs: tables from a million records, and windows cut into clips.

    python benchmarks/export.py [--records 1000000] [--seconds 210] [--size 1280x720] [--preset veryfast]
                                [--crf 23] [--repeats 1] [--cache-dir DIR] [--only tables|cuts]
                                [--baseline-python PYTHON]

1. Tables: `--records` synthetic caption records (made once; every 20th an error, the others 1 to 3 windows
   of 16 frames, a text caption and an answer that follows examples/schemas/scene.json), exported with
   `smolvlm-video export --to parquet` in a child process. Prints records per second and the child's peak
   RSS (goal: under 500 MB, whatever the number of records).
2. Cuts: a `--seconds` clip of `--size` at 30 fps, with a tone for audio, made of 15 s shots of different
   ffmpeg test sources joined and encoded with x264's defaults but for its scene-cut keyframes (so a keyframe
   every 250 frames, and each cut between two), and a record whose windows are its shots. Timed, each into
   a fresh folder, interleaved over the repeats (median):
   - exact: `export --clips` (re-encoded from each shot's first frame: libx264, `--preset`, `--crf`, AAC);
   - copy: `export --clips --cut copy` (packets copied from the keyframe at or before each start);
   - ffmpeg per shot: the same exact cuts as users make them by hand, one ffmpeg process per shot
     (`ffmpeg -ss START -i SOURCE -t LENGTH -c:v libx264 -preset P -crf C -c:a aac`), one after another.
   Prints seconds of video cut per wall second for each, and how far each method's clips are from their
   shots' length.

With `--baseline-python` (an interpreter whose `smolvlm_video` is another version, such as an earlier main
installed into a folder of its own), the tables and the exact cuts are also timed with it, interleaved in
the same run, and each figure is given as a ratio to the baseline's. Children run in the scratch folder, so
that a checkout in the working directory does not shadow the package each interpreter has.
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
import time
from pathlib import Path

from machine import cpu_name  # benchmarks/machine.py, beside this script
from scenes import SHOT_SECONDS, shot_inputs  # benchmarks/scenes.py, beside this script

from smolvlm_video.batch.records import CaptionRecord, WindowCaption, clip_id
from smolvlm_video.options import GenerationOptions, SamplingOptions

ROOT = Path(__file__).resolve().parent.parent
SCENE_SCHEMA = json.loads((ROOT / "examples" / "schemas" / "scene.json").read_text())
SOURCES = ["testsrc2", "mandelbrot", "smptebars", "life", "testsrc", "rgbtestsrc", "yuvtestsrc"]
CAPTION = "A person walks a dog along a beach at sunset while waves roll in and gulls circle overhead. " * 3


def synthetic_record(index: int) -> CaptionRecord:
    fields = {
        "model": {"id": "HuggingFaceTB/SmolVLM2-256M-Video-Instruct", "revision": None},
        "prompts": [
            {"name": "caption", "text": "Describe this video in detail.", "schema": None},
            {"name": "scene", "text": "Describe the scene.", "schema": json.dumps(SCENE_SCHEMA)},
        ],
        "sampling": SamplingOptions(split="scenes").to_dict(),
        "generation": GenerationOptions().to_dict(),
    }
    path = f"clips/{index:07d}.mp4"
    if index % 20 == 19:
        error = {"type": "corrupt", "message": f"{path}: cannot be read as a video (truncated or damaged?)"}
        return CaptionRecord(path=path, abs_path=f"/data/{path}", id=f"{index:016x}", status="error",
                             error=error, **fields)  # fmt: skip
    windows = []
    for number in range(1 + index % 3):
        scene = {"setting": "outdoor", "people": index % 2 == 0, "motion": "slow", "tags": ["water", "sky"]}
        start = number * 12.5
        stamps = [round(start + i * 0.78, 2) for i in range(16)]
        windows.append(
            WindowCaption(start, start + 12.5, CAPTION, 16, stamps, {"caption": CAPTION, "scene": scene})
        )
    answers = {
        "caption": "\n".join(w.caption for w in windows),
        "scene": [w.answers["scene"] for w in windows],
    }
    video = {"duration": 12.5 * len(windows), "fps": 30.0, "width": 1280, "height": 720, "codec": "h264",
             "rotation": 0}  # fmt: skip
    return CaptionRecord(path=path, abs_path=f"/data/{path}", id=f"{index:016x}", status="ok",
                         caption=answers["caption"], answers=answers, windows=windows, video=video,
                         timings={"decode": 0.4, "encode": 1.2, "generate": 3.1}, **fields)  # fmt: skip


def records_file(cache: Path, count: int) -> Path:
    path = cache / "export" / f"records_{count}.jsonl"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"writing {count} records to {path} ...", file=sys.stderr, flush=True)
    with open(f"{path}.part", "w", encoding="utf-8") as file:
        for index in range(count):
            file.write(synthetic_record(index).to_json() + "\n")
    os.replace(f"{path}.part", path)
    return path


def timed_child(command: list[str], cwd: Path) -> tuple[float, float]:
    """Run a command in `cwd`; its wall seconds and peak RSS in MB."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, cwd=cwd)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed ({os.waitstatus_to_exitcode(status)}): {' '.join(command)}")
    return seconds, usage.ru_maxrss / 1024


def export_command(python: str, *args: str | Path) -> list[str]:
    return [python, "-m", "smolvlm_video", "export", *map(str, args), "--quiet"]


def bench_tables(cache: Path, count: int, scratch: Path, pythons: dict[str, str], repeats: int) -> None:
    records = records_file(cache, count)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in pythons}
    for repeat in range(repeats):
        for name, python in pythons.items():
            out = scratch / f"tables-{name}-{repeat}"
            runs[name].append(timed_child(export_command(python, records, out, "--to", "parquet"), scratch))
    size = sum(p.stat().st_size for p in (scratch / "tables-this-0").glob("*.parquet")) / 1e6
    print(f"\nTables: {count} records ({records.stat().st_size / 1e9:.2f} GB of JSONL) to Parquet, "
          f"median of {repeats}")  # fmt: skip
    base = statistics.median(s for s, _ in runs["baseline"]) if "baseline" in runs else None
    for name, measured in runs.items():
        seconds = statistics.median(s for s, _ in measured)
        peak = statistics.median(p for _, p in measured)
        ratio = f", {base / seconds:.2f}x the baseline's speed" if base else ""
        print(f"  {name:8s} {seconds:.1f} s, {count / seconds:,.0f} records/s, peak RSS {peak:.0f} MB{ratio}")
    print(f"  {size:.0f} MB of Parquet")


def shot_clip(cache: Path, seconds: int, size: str) -> Path:
    """Shots of SHOT_SECONDS from the SOURCES in turn, with a tone; x264's defaults; made once."""
    path = cache / "export" / f"shots_{seconds}s_{size}_gop250.mp4"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"making {path} ...", file=sys.stderr, flush=True)
    count = seconds // SHOT_SECONDS
    inputs, joined = shot_inputs(SOURCES, seconds, size)
    inputs += ["-f", "lavfi", "-t", str(seconds), "-i", "sine=frequency=440:sample_rate=48000"]
    command = [
        "ffmpeg",
        "-v",
        "error",
        "-y",
        *inputs,
        "-filter_complex",
        joined,
        "-map",
        "[v]",
        "-map",
        f"{count}:a",
    ]
    encode = ["-c:v", "libx264", "-sc_threshold", "0", "-c:a", "aac"]  # no keyframe forced at a cut
    subprocess.run([*command, *encode, f"{path}.part.mp4"], check=True)
    os.replace(f"{path}.part.mp4", path)
    return path


def shot_record(clip: Path, scratch: Path, seconds: int) -> Path:
    windows = [
        WindowCaption(float(start), float(start + SHOT_SECONDS), "a shot", 8, [float(start)])
        for start in range(0, seconds - seconds % SHOT_SECONDS, SHOT_SECONDS)
    ]
    record = CaptionRecord(path=str(clip), abs_path=str(clip.resolve()), id=clip_id(clip), status="ok",
                           caption="a shot", windows=windows)  # fmt: skip
    path = scratch / "shots.jsonl"
    path.write_text(record.to_json() + "\n")
    return path


def ffmpeg_per_shot(
    clip: Path, folder: Path, spans: list[tuple[float, float]], preset: str, crf: int
) -> None:
    folder.mkdir(parents=True)
    for number, (start, end) in enumerate(spans):
        encode = ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-c:a", "aac"]
        command = ["ffmpeg", "-v", "error", "-y", "-ss", str(start), "-i", str(clip), "-t", str(end - start)]
        subprocess.run([*command, *encode, str(folder / f"{number:03d}.mp4")], check=True)


def clip_lengths(folder: Path) -> list[float]:
    import av

    lengths = []
    for path in sorted(folder.rglob("*.mp4")):
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            lengths.append(sum(1 for _ in container.demux(stream) if _.size) / float(stream.average_rate))
    return lengths


def bench_cuts(
    cache: Path,
    seconds: int,
    size: str,
    preset: str,
    crf: int,
    repeats: int,
    scratch: Path,
    pythons: dict[str, str],
) -> None:
    clip = shot_clip(cache, seconds, size)
    records = shot_record(clip, scratch, seconds)
    spans = [(s, s + SHOT_SECONDS) for s in range(0, seconds - seconds % SHOT_SECONDS, SHOT_SECONDS)]
    covered = sum(end - start for start, end in spans)
    encode = ["--clip-preset", preset, "--clip-crf", str(crf)]
    methods = {
        f"exact (export --clips){'' if name == 'this' else ', ' + name}": (
            lambda out, python=python: timed_child(
                export_command(python, records, out, "--clips", *encode), scratch
            )[0]
        )
        for name, python in pythons.items()
    }
    methods["copy (export --clips --cut copy)"] = lambda out: timed_child(
        export_command(sys.executable, records, out, "--clips", "--cut", "copy"), scratch
    )[0]
    methods["ffmpeg CLI once per shot"] = lambda out: _wall(
        lambda: ffmpeg_per_shot(clip, out, spans, preset, crf)
    )
    times: dict[str, list[float]] = {name: [] for name in methods}
    folders = {}
    for repeat in range(repeats):
        for number, (name, method) in enumerate(methods.items()):
            folder = scratch / f"cuts-{repeat}-{number}"
            times[name].append(method(folder))
            folders[name] = folder
    print(f"\nCuts: a {seconds} s {size} clip at 30 fps with audio, {len(spans)} shots of {SHOT_SECONDS} s "
          f"(libx264 preset {preset}, CRF {crf}), median of {repeats}")  # fmt: skip
    baseline = statistics.median(times["ffmpeg CLI once per shot"])
    for name, measured in times.items():
        median = statistics.median(measured)
        lengths = clip_lengths(folders[name])
        off = statistics.mean(abs(length - SHOT_SECONDS) for length in lengths)
        print(f"  {name:34s} {median:7.1f} s  {covered / median:6.1f} s of video per s  "
              f"{baseline / median:5.2f}x the ffmpeg CLI  clips off their shot by {off:.3f} s "
              "on average")  # fmt: skip


def _wall(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=210)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--crf", type=int, default=23)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--only", choices=["tables", "cuts"], default=None)
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "smolvlm-video-bench")
    parser.add_argument("--baseline-python", help="an interpreter with another smolvlm_video to compare")
    args = parser.parse_args()
    pythons = {"this": sys.executable}
    if args.baseline_python:
        pythons["baseline"] = args.baseline_python
    scratch = args.cache_dir / "export" / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; peak RSS of this process so far "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")  # fmt: skip
    try:
        if args.only in (None, "tables"):
            bench_tables(args.cache_dir, args.records, scratch, pythons, args.repeats)
        if args.only in (None, "cuts"):
            bench_cuts(
                args.cache_dir, args.seconds, args.size, args.preset, args.crf, args.repeats, scratch, pythons
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
