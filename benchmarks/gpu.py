"""On a CUDA GPU: `caption` against the model-card loop, at the real models' sizes.

    python benchmarks/gpu.py [--archs 256M,500M,2.2B] [--frames 8,32,64] [--batch-sizes 1,2,4,8,16]
                             [--clips 32] [--max-new-tokens 64] [--vision auto] [--compile both]
                             [--cache-dir DIR]

Checkpoints: random weights of the real 256M, 500M and 2.2B shapes (`python -m smolvlm_video.testing
--arch ...`), so compute and memory are the real models'; answers are noise, and every answer is
exactly --max-new-tokens long (min_new_tokens forces it). Clips: --clips cuts of 70 s from one 640x360
H.264 test pattern, each starting 2 s after the one before (the same encoding, other frames: copies of one
clip would share their vision features in a batch), sampled at 1 fps up to the frame count, so each clip
is one prompt of exactly that many frames.

Measured, per checkpoint and frame count, in this process (the model loaded once, warmed up first):
- caption: the run API (`smolvlm_video.batch.runs.Captioning`, what `smolvlm-video caption` runs) at each
  batch size, with each vision mode asked for (--vision both: batched and per-chat), and each decoding asked
  for (--compile both, the default: the eager loop and the compiled step, `model.compiling`);
- the model-card loop: for each clip, processor.apply_chat_template with the video path (the processor
  samples the frames; it needs torchcodec: pip install -e '.[bench]'), model.generate, batch_decode.

Then the host's side, for each frame count: the decode-only rate (clips a minute of the caption run's
frame decoding alone, no model) for each of --decode-workers, and the model-only rate (the same frames
decoded beforehand, batches of the biggest batch size) for each decoding. The caption run is bound by
the host where its clips a minute are near the decode-only rate and below the model-only rate.

Each row: clips per minute, new tokens per second, peak GPU memory (torch.cuda.max_memory_allocated)
and the share of wall time the GPU was busy (NVML's utilisation, sampled every 50 ms: the share of
time a kernel was running). The model cards' memory figures for video inference are the anchors for
batch 1 at 64 frames: 256M 1.38 GB, 500M 1.8 GB, 2.2B 5.2 GB. Then, per checkpoint, the seconds per
frame and per new token of one 64-frame chat, the costs `demo/zerogpu.py` estimates, and the milliseconds of
a decoding step at batch 1 and 8 and the first token's seconds, for each decoding. The first lines say the
machine: the GPU, the CPU's cores, and the versions of torch, transformers and CUDA.

Without CUDA it exits with status 1 and one line. `--device cpu` runs the same steps on the CPU (no
memory or busy columns) to check the script itself, with `--archs tiny` in seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MODEL_CARD_GB = {"256M": 1.38, "500M": 1.8, "2.2B": 5.2}  # GPU RAM for video inference, per model card
CLIP_SECONDS = 70  # long enough for 64 frames at 1 fps
SHIFT_SECONDS = 2  # one keyframe interval of the source: where each clip starts after the one before
PROMPT = "Describe this video in detail."


@dataclass(frozen=True)
class Row:
    arch: str
    frames: int
    method: str  # "caption" or "model-card loop"
    batch: int
    vision: str
    decoding: str  # "eager" or "compiled"
    clips_per_minute: float
    tokens_per_second: float
    peak_gb: float | None
    busy: float | None  # share of wall time a kernel ran


def parse_args() -> argparse.Namespace:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--archs", default="256M,500M,2.2B")
    parser.add_argument("--frames", default="8,32,64")
    parser.add_argument("--batch-sizes", default="1,2,4,8,16")
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--vision", choices=["auto", "batched", "per-chat", "both"], default="auto")
    parser.add_argument("--compile", choices=["off", "on", "both"], default="both")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--skip-loop", action="store_true", help="measure caption only")
    parser.add_argument(
        "--decode-workers", default="1,2,4,8", help="decoding threads for the decode-only rate"
    )
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "smolvlm-video-bench")
    return parser.parse_args()


def make_clips(cache: Path, count: int) -> Path:
    """A folder of `count` clips of CLIP_SECONDS, made once: each cut without re-encoding from one test
    pattern, SHIFT_SECONDS after the one before, so every clip is encoded alike but shows other frames.

    Copies of one clip would not do: a batch encodes a medium it holds several times once
    (`smolvlm_video.model.features`), so a batch of copies would run the vision encoder for one clip.
    """
    source = make_source(cache, CLIP_SECONDS + SHIFT_SECONDS * (count - 1))
    folder = cache / "gpu" / f"distinct-{count}"
    folder.mkdir(exist_ok=True)
    for number in range(count):
        clip = folder / f"clip_{number:03d}.mp4"
        if not clip.exists():
            cut(source, SHIFT_SECONDS * number, CLIP_SECONDS, clip)
    return folder


def make_source(cache: Path, seconds: int) -> Path:
    """A 640x360 H.264 test pattern at 30 fps, a keyframe every 2 s, at least `seconds` long: one made before,
    or a new one made with ffmpeg."""
    made = {int(p.stem.removeprefix("source-").removesuffix("s")): p for p in cache.glob("gpu/source-*s.mp4")}
    if long_enough := [made[length] for length in sorted(made) if length >= seconds]:
        return long_enough[0]
    source = cache / "gpu" / f"source-{seconds}s.mp4"
    if shutil.which("ffmpeg") is None:
        sys.exit(f"benchmarks/gpu.py needs ffmpeg on the PATH to make {source} (or a copy of it there).")
    source.parent.mkdir(parents=True, exist_ok=True)
    print(f"making {source} ...", file=sys.stderr, flush=True)
    lavfi = f"testsrc2=size=640x360:rate=30:duration={seconds}"
    command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", lavfi, "-c:v", "libx264", "-g", "60"]
    subprocess.run([*command, "-pix_fmt", "yuv420p", f"{source}.part.mp4"], check=True)
    os.replace(f"{source}.part.mp4", source)
    return source


def cut(source: Path, start: float, seconds: float, out: Path) -> None:
    """`seconds` of `source` from its keyframe at `start`, its packets copied (PyAV), timed from zero."""
    import av

    with av.open(str(source)) as reader, av.open(f"{out}.part.mp4", "w") as writer:
        video = reader.streams.video[0]
        copy = writer.add_stream_from_template(video)
        reader.seek(round(start / video.time_base), stream=video)  # the keyframe at or before `start`
        first, end = None, round((start + seconds) / video.time_base)
        for packet in reader.demux(video):
            if packet.dts is None:  # the demuxer's empty packet at the end
                continue
            if first is None:
                first = packet.pts
            if packet.dts >= end:
                break
            packet.pts, packet.dts, packet.stream = packet.pts - first, packet.dts - first, copy
            writer.mux(packet)
    os.replace(f"{out}.part.mp4", out)


class BusySampler:
    """The mean of NVML's GPU utilisation, sampled every 50 ms while running (None where NVML is absent)."""

    def __init__(self, device: str) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True) if device == "cuda" else None

    def _run(self) -> None:
        import torch

        while not self._stop.wait(0.05):
            try:
                self.samples.append(torch.cuda.utilization() / 100)
            except Exception:  # no NVML (pynvml): the column stays empty
                return

    def __enter__(self) -> BusySampler:
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def share(self) -> float | None:
        return statistics.mean(self.samples) if self.samples else None


@contextlib.contextmanager
def measured(device: str) -> Iterator[dict[str, float | None]]:
    """Wall seconds, peak GPU memory (GB) and busy share of the block, filled in when it ends."""
    import torch

    result: dict[str, float | None] = {}
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    with BusySampler(device) as busy:
        started = time.perf_counter()
        yield result
        if device == "cuda":
            torch.cuda.synchronize()
        result["seconds"] = time.perf_counter() - started
    result["peak_gb"] = torch.cuda.max_memory_allocated() / 1e9 if device == "cuda" else None
    result["busy"] = busy.share


def run_caption(model, folder: Path, frames: int, batch: int, args: argparse.Namespace) -> dict:
    """Caption the folder once with the run API; what `measured` saw."""
    from smolvlm_video.batch.captioning import CaptionJob
    from smolvlm_video.batch.runs import Captioning, CaptionRun
    from smolvlm_video.model.schemas import Question
    from smolvlm_video.options import GenerationOptions, ModelOptions, SamplingOptions

    tokens = args.max_new_tokens
    job = CaptionJob(
        model=ModelOptions(model.model_id, device=args.device),
        questions={"caption": Question(PROMPT)},
        sampling=SamplingOptions(fps=1.0, max_frames=frames, window_seconds=CLIP_SECONDS + 10),
        generation=GenerationOptions(max_new_tokens=tokens, min_new_tokens=tokens),
        batch_size=batch,
    )
    model.features.clear()  # every clip is encoded in the run, none found kept from a warm-up before it
    with tempfile.TemporaryDirectory() as scratch:
        run = CaptionRun((str(folder),), Path(scratch) / "captions.jsonl", job)
        with measured(args.device) as result:
            records = list(Captioning(run, model=model))
    failed = [r.error for r in records if r.status != "ok"]
    if failed:
        raise RuntimeError(f"caption failed on {len(failed)} clips, first: {failed[0]}")
    return result


def run_loop(model, folder: Path, frames: int, args: argparse.Namespace) -> dict:
    """The model-card loop over the folder; what `measured` saw."""
    import torch

    processor, vlm, tokens = model.processor, model.model, args.max_new_tokens
    with measured(args.device) as result:
        for path in sorted(folder.glob("*.mp4")):
            content = [{"type": "video", "path": str(path)}, {"type": "text", "text": PROMPT}]
            sampling = {"do_sample_frames": True, "num_frames": frames, "fps": 1.0}
            inputs = processor.apply_chat_template(
                [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=True,
                return_dict=True, return_tensors="pt", processor_kwargs=sampling,
            ).to(vlm.device, dtype=vlm.dtype)  # fmt: skip
            with torch.inference_mode():
                ids = vlm.generate(**inputs, do_sample=False, max_new_tokens=tokens, min_new_tokens=tokens)
            processor.batch_decode(ids[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    return result


def decode_only(model, folder: Path, frames: int, workers: int, args: argparse.Namespace) -> float:
    """Clips a minute of the caption run's frame decoding alone (its workers and preparation), no model."""
    from smolvlm_video.batch.captioning import preparer
    from smolvlm_video.batch.prefetch import prefetch_windows
    from smolvlm_video.options import SamplingOptions

    sampling = SamplingOptions(fps=1.0, max_frames=frames, window_seconds=CLIP_SECONDS + 10)
    clips = [str(p) for p in sorted(folder.glob("*.mp4"))]
    started = time.perf_counter()
    for window in prefetch_windows(
        clips, sampling.for_frame_side(model.frame_side), workers, preparer(model)
    ):
        if window.error is not None:
            raise RuntimeError(f"decoding failed: {window.error}")
    return 60 * len(clips) / (time.perf_counter() - started)


def model_only(model, folder: Path, frames: int, batch: int, args: argparse.Namespace) -> dict:
    """The caption run's model work on frames decoded beforehand: what `measured` saw."""
    from smolvlm_video import sample_video
    from smolvlm_video.model.generate import generate
    from smolvlm_video.model.prompts import chat
    from smolvlm_video.options import GenerationOptions, SamplingOptions

    sampling = SamplingOptions(fps=1.0, max_frames=frames).for_frame_side(model.frame_side)
    clips = sorted(folder.glob("*.mp4"))
    videos = [sample_video(path, sampling) for path in clips]
    tokens = args.max_new_tokens
    options = GenerationOptions(max_new_tokens=tokens, min_new_tokens=tokens)
    model.features.clear()  # each clip's frames are encoded, as in a caption run
    with measured(args.device) as result:
        for start in range(0, len(videos), batch):
            generate(model, [chat(PROMPT, video) for video in videos[start : start + batch]], options)
            model.features.clear()
    return result


def host_rates(
    model, folder: Path, frames: int, batch: int, args: argparse.Namespace, rows: list[Row]
) -> list[str]:
    """Lines: the decode-only rate for each worker count, the model-only rate for each decoding, and the
    caption runs' clips a minute as a share of the decode-only rate with the caption run's workers."""
    from smolvlm_video.batch.prefetch import DEFAULT_WORKERS

    lines, rates = [], {}
    for workers in dict.fromkeys([DEFAULT_WORKERS, *map(int, args.decode_workers.split(","))]):
        rates[workers] = decode_only(model, folder, frames, workers, args)
        lines.append(f"decode-only, {frames} frames, {workers} workers: {rates[workers]:.1f} clips/min")
    for r in rows:
        if r.method == "caption" and r.frames == frames and r.batch == batch:
            share = r.clips_per_minute / rates[DEFAULT_WORKERS]
            lines.append(f"caption, {frames} frames, batch {batch}, {r.decoding}: {share:.0%} of the "
                         f"decode-only rate (goal where the host is the bound: at least 80%)")  # fmt: skip
    for compiled in {"off": [False], "on": [True], "both": [False, True]}[args.compile]:
        model.compiled = compiled
        result = model_only(model, folder, frames, batch, args)
        rate = 60 * args.clips / result["seconds"]
        busy = f", GPU busy {result['busy']:.0%}" if result["busy"] is not None else ""
        decoding = "compiled" if compiled else "eager"
        lines.append(f"model-only, {frames} frames, batch {batch}, {decoding}: {rate:.1f} clips/min{busy}")
    return lines


def row(
    arch: str,
    frames: int,
    method: str,
    batch: int,
    vision: str,
    decoding: str,
    clips: int,
    tokens: int,
    m: dict,
) -> Row:
    seconds = m["seconds"]
    return Row(
        arch,
        frames,
        method,
        batch,
        vision,
        decoding,
        60 * clips / seconds,
        clips * tokens / seconds,
        m["peak_gb"],
        m["busy"],
    )


def unit_costs(
    model, folder: Path, args: argparse.Namespace, batch: int = 1, frames: int = 64
) -> tuple[float, float]:
    """Seconds per frame (vision and prefill) and per decoding step of `batch` chats of `frames` frames."""
    from smolvlm_video import SamplingOptions, sample_video
    from smolvlm_video.model.generate import generate
    from smolvlm_video.model.prompts import chat
    from smolvlm_video.options import GenerationOptions

    sampling = SamplingOptions(fps=1.0, max_frames=frames).for_frame_side(model.frame_side)
    clips = sorted(folder.glob("*.mp4"))[:batch]  # other frames in each row: each is encoded
    messages = [chat(PROMPT, sample_video(clips[row % len(clips)], sampling)) for row in range(batch)]
    tokens = args.max_new_tokens
    # Warm-up: the first call sets CUDA up, and compiles the step for this batch's buckets where compiled
    generate(model, messages, GenerationOptions(max_new_tokens=tokens, min_new_tokens=tokens))
    seconds = {}
    for tokens in (1, args.max_new_tokens):
        model.features.clear()  # the frames are encoded in each run, as for a new clip, not found kept
        with measured(args.device) as result:
            generate(model, messages, GenerationOptions(max_new_tokens=tokens, min_new_tokens=tokens))
        seconds[tokens] = result["seconds"]
    per_token = (seconds[args.max_new_tokens] - seconds[1]) / (args.max_new_tokens - 1)
    return (seconds[1] - per_token) / (frames * len(clips)), per_token


@dataclass(frozen=True)
class Costs:
    """One decoding's unit costs: a frame, a step at batch 1 and 8, and the first token at batch 1."""

    per_frame: float
    step_1: float
    step_8: float
    first_token: float


ASKED = ("Describe this video.", "What colours are there?", "What moves?", "How many shapes do you see?")
QUESTIONS = [f"{question} ({n})" for n in range(4) for question in ASKED]  # 16 prompts


def same_answers(model, folder: Path, args: argparse.Namespace) -> str:
    """Greedy answers of the compiled step against the eager loop's on 16 prompts (8 frames), by token ids:
    how many are equal, and where the first of the others diverges."""
    from smolvlm_video import SamplingOptions, sample_video
    from smolvlm_video.model.generate import _run
    from smolvlm_video.model.prompts import TRAINED_STRINGS, chat
    from smolvlm_video.options import GenerationOptions

    video = sample_video(
        next(folder.glob("*.mp4")), SamplingOptions(max_frames=8).for_frame_side(model.frame_side)
    )
    chats, options = (
        [chat(q, video) for q in QUESTIONS],
        GenerationOptions(max_new_tokens=args.max_new_tokens),
    )
    answers = {}
    for compiled in (False, True):
        model.compiled = compiled
        answers[compiled] = [_run(model, [c], options, TRAINED_STRINGS)[1][0].tolist() for c in chats]
    pairs = list(zip(answers[False], answers[True], strict=True))
    equal = sum(eager == compiled for eager, compiled in pairs)
    diverging = next(((n, e, c) for n, (e, c) in enumerate(pairs) if e != c), None)
    where = ""
    if diverging:
        n, eager, compiled = diverging
        at = next(
            (i for i, (a, b) in enumerate(zip(eager, compiled, strict=False)) if a != b),
            min(len(eager), len(compiled)),
        )
        where = f"; prompt {n} first diverges at new token {at}"
    return f"{equal} of {len(pairs)} greedy answers equal, compiled against eager (goal: 15){where}"


def warm_up(model, folder: Path, frames: int, batch: int, args: argparse.Namespace) -> None:
    """Compile the step for `batch` chats of `frames` frames (their batch and cache buckets) if compiled."""
    from smolvlm_video import SamplingOptions, sample_video
    from smolvlm_video.model.generate import generate
    from smolvlm_video.model.prompts import chat
    from smolvlm_video.options import GenerationOptions

    if model.compiled:
        sampling = SamplingOptions(fps=1.0, max_frames=frames).for_frame_side(model.frame_side)
        messages = [chat(PROMPT, sample_video(next(folder.glob("*.mp4")), sampling))] * batch
        tokens = args.max_new_tokens
        generate(model, messages, GenerationOptions(max_new_tokens=tokens, min_new_tokens=tokens))


def decoding_costs(model, folder: Path, args: argparse.Namespace) -> Costs:
    """The model's unit costs as it decodes now (eager or compiled); each first call compiles or warms up."""
    per_frame, step_1 = unit_costs(model, folder, args)
    _, step_8 = unit_costs(model, folder, args, batch=8)
    return Costs(per_frame, step_1, step_8, 64 * per_frame + step_1)


def measure_arch(arch: str, folder: Path, args: argparse.Namespace) -> tuple[list[Row], dict[str, Costs]]:
    """Every row of one checkpoint, and its unit costs for each decoding."""
    from caption_throughput import make_checkpoint

    from smolvlm_video.model.loading import load_model

    model = load_model(str(make_checkpoint(args.cache_dir, arch)), device=args.device)
    print(f"{arch}: {', '.join(model.why)}", file=sys.stderr, flush=True)
    visions = (
        ["batched", "per-chat"]
        if args.vision == "both"
        else [model.vision if args.vision == "auto" else args.vision]
    )
    decodings = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
    costs = {}
    for compiled in decodings:  # the first call warms the GPU up too, and compiles where compiled
        model.compiled = compiled
        costs["compiled" if compiled else "eager"] = decoding_costs(model, folder, args)
    if len(decodings) == 2:
        print(f"{arch}: {same_answers(model, folder, args)}", flush=True)
    rows, clips, tokens = [], args.clips, args.max_new_tokens
    for frames in map(int, args.frames.split(",")):
        if not args.skip_loop:
            rows.append(
                row(
                    arch,
                    frames,
                    "model-card loop",
                    1,
                    "",
                    "eager",
                    clips,
                    tokens,
                    run_loop(model, folder, frames, args),
                )
            )
            print(table(rows[-1:], header=False), file=sys.stderr, flush=True)
        for vision, compiled in [(v, c) for v in visions for c in decodings]:
            model.vision, model.compiled = vision, compiled
            decoding = "compiled" if compiled else "eager"
            for batch in map(int, args.batch_sizes.split(",")):
                warm_up(model, folder, frames, min(batch, clips), args)  # a compile is once a process
                measured_run = run_caption(model, folder, frames, batch, args)
                rows.append(
                    row(arch, frames, "caption", batch, vision, decoding, clips, tokens, measured_run)
                )
                print(table(rows[-1:], header=False), file=sys.stderr, flush=True)
    for frames in map(int, args.frames.split(",")):
        batch = max(map(int, args.batch_sizes.split(",")))
        for line in host_rates(model, folder, frames, min(batch, clips), args, rows):
            print(f"{arch}: {line}", flush=True)
    del model
    if args.device == "cuda":
        import torch

        torch.cuda.empty_cache()
    return rows, costs


def table(rows: list[Row], header: bool = True) -> str:
    lines = [
        "| model | frames | method | batch | vision | decoding | clips/min | new tokens/s | peak GPU GB "
        "| GPU busy |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ] if header else []  # fmt: skip
    for r in rows:
        peak = f"{r.peak_gb:.2f}" if r.peak_gb is not None else "n/a"
        busy = f"{r.busy:.0%}" if r.busy is not None else "n/a"
        cells = [r.arch, r.frames, r.method, r.batch, r.vision, r.decoding, f"{r.clips_per_minute:.1f}",
                 f"{r.tokens_per_second:.0f}", peak, busy]  # fmt: skip
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def goals(rows: list[Row]) -> list[str]:
    """The issues' goals, checked where the rows allow it."""
    lines = []
    for arch in dict.fromkeys(r.arch for r in rows):
        at8 = {r.decoding: r for r in rows if r.arch == arch and r.frames == 8 and r.batch == 8}
        if {"eager", "compiled"} <= set(at8):
            ratio = at8["compiled"].clips_per_minute / at8["eager"].clips_per_minute
            lines.append(f"{arch}, 8 frames, batch 8: compiled {ratio:.2f}x eager's clips/min (goal: 3x)")
        at64 = [r for r in rows if r.arch == arch and r.frames == 64]
        loop = next((r for r in at64 if r.method == "model-card loop"), None)
        best = max((r for r in at64 if r.method == "caption"), key=lambda r: r.clips_per_minute, default=None)
        if loop and best:
            ratio = best.clips_per_minute / loop.clips_per_minute
            lines.append(f"{arch}, 64 frames: caption {ratio:.2f}x the loop's clips/min (batch {best.batch}, "
                         f"{best.vision}){' (goal for 256M: 2x)' if arch == '256M' else ''}")  # fmt: skip
        one = [r for r in at64 if r.method == "caption" and r.batch == 1 and r.peak_gb is not None]
        if one and arch in MODEL_CARD_GB:
            peak = min(r.peak_gb for r in one)
            card = MODEL_CARD_GB[arch]
            lines.append(f"{arch}, batch 1, 64 frames: peak {peak:.2f} GB = {peak / card:.2f}x "
                         f"the model card's {card} GB (goal: at most 1.2x)")  # fmt: skip
    return lines


def main() -> None:
    args = parse_args()
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit(
            "benchmarks/gpu.py needs a CUDA GPU, and torch sees none here (--device cpu checks the script)."
        )
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    folder = make_clips(args.cache_dir, args.clips)
    print(machine(args.device))
    rows, costs = [], {}
    for arch in args.archs.split(","):
        arch_rows, costs[arch] = measure_arch(arch, folder, args)
        rows += arch_rows
    print(f"\n{args.clips} clips, {args.max_new_tokens} new tokens each\n")
    print(table(rows))
    print()
    for line in goals(rows):
        print(line)
    for arch, by_decoding in costs.items():
        for decoding, cost in by_decoding.items():
            steps = (
                f"a step {1000 * cost.step_1:.1f} ms at batch 1 and {1000 * cost.step_8:.1f} ms at batch 8"
            )
            print(f"{arch}, {decoding}: {cost.per_frame:.4f} s a frame, {steps}, first token "
                  f"{cost.first_token:.2f} s (64-frame chats)")  # fmt: skip
        if {"eager", "compiled"} <= set(by_decoding):
            ratio = by_decoding["compiled"].step_1 / by_decoding["eager"].step_1
            print(
                f"{arch}: a compiled step at batch 1 takes {ratio:.2f} of an eager one (goal: at most 0.20)"
            )


def machine(device: str) -> str:
    """The GPU, the CPU's cores, and the versions of torch, transformers and CUDA."""
    import torch
    import transformers

    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "no GPU (--device cpu)"
    return (f"{gpu}; {os.cpu_count()} CPU cores; torch {torch.__version__}, transformers "
            f"{transformers.__version__}, CUDA {torch.version.cuda}")  # fmt: skip


if __name__ == "__main__":
    main()
