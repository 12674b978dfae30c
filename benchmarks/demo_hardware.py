"""Seconds per answer of each demo tab on this machine: what to pick a Space's hardware by.

    python benchmarks/demo_hardware.py [--archs tiny,256M] [--device auto] [--new-tokens 64]
                                       [--repeats 2] [--video FILE] [--cache-dir DIR]

Checkpoints: random weights of the real shapes (`python -m smolvlm_video.testing --arch ...`), so compute
and memory are the real models'; answers are noise, each forced to exactly --new-tokens tokens
(min_new_tokens), as a real answer of that length would take. Per shape, the model loaded once and warmed
up, the median of --repeats runs of each request, from the file to the whole answer:

- image: the Ask tab about examples/images/testcard.png (the processor splits it into tiles);
- video: the Chat tab about a 3.5-minute 720p H.264 video (or --video), sampled at 1 fps up to 64 frames (the
  defaults);
- analyze: the Analyze tab over examples/clips/three-shots.mp4 split into shots: finding the shots, then
  three windows, three answers;
- live: the Live tab's answer about one 640x480 camera frame (answers there are at most 64 tokens).

The requests are built by the core functions the demo calls (the same chats, the same caption job); the
app's own overhead per request is measured by benchmarks/demo_latency.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from caption_throughput import make_checkpoint
from demo_latency import make_video

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
QUESTION = "What happens here?"
REQUESTS = ("image", "video", "analyze", "live")


def requests(model, new_tokens: int, video: Path) -> dict[str, Callable[[], None]]:
    """One function per tab, each doing that tab's request from its file to the whole answer."""
    from PIL import Image

    from smolvlm_video import SamplingOptions, sample_video
    from smolvlm_video.batch.captioning import CaptionJob, caption_steps
    from smolvlm_video.batch.prefetch import plan_clip
    from smolvlm_video.model.generate import generate
    from smolvlm_video.model.prompts import chat
    from smolvlm_video.model.schemas import Question
    from smolvlm_video.options import GenerationOptions

    forced = GenerationOptions(max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    live_tokens = min(new_tokens, 64)
    short = GenerationOptions(max_new_tokens=live_tokens, min_new_tokens=live_tokens)
    camera = Image.fromarray(np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8))
    sampling = SamplingOptions(fps=1.0, max_frames=64).for_frame_side(model.frame_side)
    shots = SamplingOptions(fps=1.0, max_frames=64, split="scenes").for_frame_side(model.frame_side)
    job = CaptionJob(questions={"caption": Question(QUESTION)}, sampling=shots, generation=forced)

    def image() -> None:
        generate(model, [chat(QUESTION, Image.open(EXAMPLES / "images" / "testcard.png"))], forced)

    def video_question() -> None:
        generate(model, [chat(QUESTION, sample_video(video, sampling))], forced)

    def analyze() -> None:
        clip = plan_clip(str(EXAMPLES / "clips" / "three-shots.mp4"), shots)
        assert clip.window_count == 3, clip
        for _ in caption_steps(model, job, [clip]):
            pass

    def live() -> None:
        generate(model, [chat("Describe what you see in one sentence.", camera)], short)

    return {"image": image, "video": video_question, "analyze": analyze, "live": live}


def timed(function: Callable[[], None], repeats: int) -> float:
    function()  # warm-up: the first call pays for lazy set-up
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--archs", default="tiny,256M")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--video", type=Path, help="the video request's file [default: 3.5 min of 720p, made]"
    )
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "smolvlm-video-bench")
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import torch

    from smolvlm_video.model.loading import load_model

    video = args.video or make_video(args.cache_dir)
    rows = []
    for arch in args.archs.split(","):
        model = load_model(str(make_checkpoint(args.cache_dir, arch)), device=args.device)
        print(f"{arch}: {', '.join(model.why)}", file=sys.stderr, flush=True)
        work = requests(model, args.new_tokens, video)
        seconds = {name: timed(work[name], args.repeats) for name in REQUESTS}
        rows.append((arch, f"{model.device.type}, {str(model.dtype).removeprefix('torch.')}", seconds))
        print(arch, {name: round(s, 2) for name, s in seconds.items()}, file=sys.stderr, flush=True)
        del model, work
    where = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"{os.cpu_count()} CPU cores"
    tokens = f"answers of {args.new_tokens} tokens (live: at most 64)"
    print(f"\n{where}, torch {torch.__version__}; {tokens}; video request: {video.name}\n")
    print("| shape | device, dtype | image | video, 64 frames | analyze, 3 shots | live frame |")
    print("|---|---|---|---|---|---|")
    for arch, device, seconds in rows:
        print(f"| {arch} | {device} | " + " | ".join(f"{seconds[name]:.1f} s" for name in REQUESTS) + " |")


if __name__ == "__main__":
    main()
