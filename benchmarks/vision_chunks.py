"""The vision encoder over a video's frames in chunks: seconds a frame and the memory peak, by chunk size.

A video's frames go through the encoder `chunk` frames a call (`smolvlm_video.model.features`). A
bigger call keeps a GPU busier but holds more activations at once. This encodes `--frames` frames of a
random-weight checkpoint of a real shape for each chunk size, each in a process of its own, and reports
the seconds a frame and the peak: `torch.cuda.max_memory_allocated` on CUDA, the process's peak RSS
above its RSS once the model is loaded on the CPU.

    python benchmarks/vision_chunks.py --arch 256M --device cpu --chunks 4,8,16,32,64
    python benchmarks/vision_chunks.py --arch 256M --device cpu --compile-encoder

`--compile-encoder` asks whether compiling the encoder pays: at the model's own chunk
(`loading.vision_chunk`, at most 64 frames), two chunks of frames through the eager encoder and through
`torch.compile`'s, best of --repeats each, the compile's seconds, and how far their features differ.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def measure(arch: str, device: str, dtype: str, frames: int, chunk: int, repeats: int) -> dict:
    import torch

    from smolvlm_video.model.features import encode_frames
    from smolvlm_video.model.loading import load_model
    from smolvlm_video.testing import build_checkpoint

    with tempfile.TemporaryDirectory() as folder:
        model = load_model(str(build_checkpoint(folder, arch)), device=device, dtype=dtype)
    side = model.frame_side
    values = torch.rand(1, frames, 3, side, side).to(model.device, model.dtype)
    mask = torch.ones(1, frames, side, side, dtype=torch.bool, device=model.device)
    with torch.inference_mode():
        encode_frames(model, values[:, :chunk], mask[:, :chunk], chunk)  # warm-up, outside the peak
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        loaded = rss_mb()
        seconds, _ = timed_encoding(model, values, mask, chunk, repeats)
    peak = (
        torch.cuda.max_memory_allocated() / 1e6
        if device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - loaded
    )
    return {"seconds_a_frame": seconds / frames, "peak_mb": peak}


def timed_encoding(model, values, mask, chunk: int, repeats: int) -> tuple[float, Any]:
    """The best of `repeats` encodings of `values`, `chunk` frames a call, in seconds (the device's queued
    work waited for), and the features of the last."""
    import torch

    from smolvlm_video.model.features import encode_frames

    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        features = encode_frames(model, values, mask, chunk)
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return min(times), features


def compiled_encoder(model, repeats: int = 3) -> dict:
    """Seconds a frame through the eager encoder and the compiled one, at the model's chunk (two chunks of
    random frames), the compile's seconds, and the largest difference between their features. The model's
    encoder is its eager one again afterwards."""
    import torch

    from smolvlm_video.model.features import encode_frames

    side, chunk = model.frame_side, min(model.vision_chunk, 64)  # a small model's chunk is a whole video
    frames = 2 * chunk
    values = torch.rand(1, frames, 3, side, side).to(model.device, model.dtype)
    mask = torch.ones(1, frames, side, side, dtype=torch.bool, device=model.device)

    holder = model.model.model  # SmolVLMModel: its vision_model is what get_image_features calls
    eager_encoder = holder.vision_model
    with torch.inference_mode():
        encode_frames(model, values[:, :chunk], mask[:, :chunk], chunk)  # warm-up
        eager, eager_features = timed_encoding(model, values, mask, chunk, repeats)
        holder.vision_model = torch.compile(eager_encoder)
        try:
            started = time.perf_counter()
            encode_frames(model, values[:, :chunk], mask[:, :chunk], chunk)  # compiles
            compile_seconds = time.perf_counter() - started
            compiled, compiled_features = timed_encoding(model, values, mask, chunk, repeats)
        finally:
            holder.vision_model = eager_encoder
    difference = (eager_features.float() - compiled_features.float()).abs().max().item()
    return {"chunk": chunk, "eager_s_a_frame": eager / frames, "compiled_s_a_frame": compiled / frames,
            "compile_s": compile_seconds, "max_difference": difference}  # fmt: skip


def compile_encoder_run(args: argparse.Namespace) -> dict:
    """`--compile-encoder`: `compiled_encoder` on a random-weight checkpoint of `args.arch`."""
    from smolvlm_video.model.loading import load_model
    from smolvlm_video.testing import build_checkpoint

    with tempfile.TemporaryDirectory() as folder:
        model = load_model(str(build_checkpoint(folder, args.arch)), device=args.device, dtype=args.dtype)
    return {"arch": args.arch, "device": args.device, "dtype": str(model.dtype).removeprefix("torch."),
            **compiled_encoder(model, max(args.repeats, 3))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", default="256M")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--chunks", default="4,8,16,32,64")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--compile-encoder", action="store_true", help="eager against compiled encoder")
    parser.add_argument("--chunk", type=int, help=argparse.SUPPRESS)  # one measurement, as JSON
    args = parser.parse_args()
    if args.compile_encoder:
        print(json.dumps(compile_encoder_run(args)))
        return
    if args.chunk:
        result = measure(args.arch, args.device, args.dtype, args.frames, args.chunk, args.repeats)
        print(json.dumps(result))
        return
    common = ["--arch", args.arch, "--device", args.device, "--dtype", args.dtype]
    common += ["--frames", str(args.frames), "--repeats", str(args.repeats)]
    print(f"{args.arch}, {args.device} ({args.dtype}), {args.frames} frames, best of {args.repeats}")
    print("| chunk (frames a call) | seconds a frame | peak MB |")
    print("|---|---|---|")
    for chunk in [int(c) for c in args.chunks.split(",")]:
        command = [sys.executable, str(Path(__file__).resolve()), *common, "--chunk", str(chunk)]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"| {chunk} | {r['seconds_a_frame']:.3f} | {r['peak_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
