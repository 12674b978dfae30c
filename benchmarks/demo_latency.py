"""Demo latency: time to the first streamed token through the app, against the core's own preparation.

    python benchmarks/demo_latency.py [--repeats 3] [--cache-dir DIR]

The video: 3.5 minutes of 1280x720 H.264 (ffmpeg's testsrc2 at 30 fps), made once. The checkpoint:
the tiny random-weight one, so the model's own time is negligible and what is measured is the
request path. Both sides sample 64 frames (fps 1) at the checkpoint's frame side.

- core: a fresh process runs sample_video + build_inputs on the file (the work no app can avoid).
- app: `smolvlm-video demo` in its own process, model loaded by a warm-up request; gradio_client
  uploads the video to /ask and the clock stops at the first non-empty piece of the answer (the
  client does not download the frame gallery's files, as a browser would load them beside the text). Each
  repeat uploads a re-muxed copy with different bytes, so no cache in the app can help it.

Printed: the medians, and the ratio app / core (the goal: at most 1.3).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

QUESTION = "What happens in this video?"
CORE = r"""
import sys, time
from smolvlm_video import SamplingOptions, sample_video
from smolvlm_video.model.inputs import build_inputs
from smolvlm_video.model.loading import load_model
from smolvlm_video.model.prompts import chat
model = load_model(sys.argv[1], device="cpu")
started = time.perf_counter()
video = sample_video(sys.argv[2], SamplingOptions(fps=1, max_frames=64).for_frame_side(model.frame_side))
build_inputs(model.processor, [chat(sys.argv[3], video)])
print(time.perf_counter() - started)
"""


def make_video(folder: Path) -> Path:
    """3.5 minutes of 720p, made once."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "bench_210s_1280x720.mp4"
    if not path.exists():
        print(f"making {path} ...", file=sys.stderr, flush=True)
        source = "testsrc2=size=1280x720:rate=30:duration=210"
        command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, "-c:v", "libx264"]
        subprocess.run([*command, "-pix_fmt", "yuv420p", f"{path}.part.mp4"], check=True)
        os.replace(f"{path}.part.mp4", path)
    return path


def remuxed_copy(video: Path, folder: Path, tag: int) -> Path:
    """The same frames in a file with different bytes (a metadata tag), so no upload cache matches."""
    copy = folder / f"copy{tag}.mp4"
    command = ["ffmpeg", "-v", "error", "-y", "-i", str(video), "-c", "copy"]
    subprocess.run([*command, "-metadata", f"comment=copy {tag}", str(copy)], check=True)
    return copy


def core_seconds(checkpoint: Path, video: Path) -> float:
    done = subprocess.run(
        [sys.executable, "-c", CORE, str(checkpoint), str(video), QUESTION],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    return float(done.stdout.strip().splitlines()[-1])


def start_app(checkpoint: Path, log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "smolvlm_video", "demo", "--port", str(port)]
    command += ["--model", str(checkpoint), "--device", "cpu"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with log.open("wb") as out:
        app = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(240):
        try:
            with urllib.request.urlopen(url, timeout=2):
                return app, url
        except OSError:
            if app.poll() is not None:
                raise RuntimeError(f"the app exited:\n{log.read_text()[-2000:]}") from None
            time.sleep(0.5)
    raise RuntimeError("the app did not start within 2 minutes")


def first_token_seconds(client, video: Path, settings: list) -> float:
    from gradio_client import handle_file

    started = time.perf_counter()
    job = client.submit(handle_file(video), QUESTION, None, *settings, api_name="/ask")
    for answer, *_ in job:
        if answer:
            elapsed = time.perf_counter() - started
            job.cancel()
            return elapsed
    raise RuntimeError("the app streamed no answer")


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "smolvlm-video-bench")
    args = parser.parse_args()

    from gradio_client import Client, handle_file

    video = make_video(args.cache_dir)
    checkpoint = args.cache_dir / "checkpoint-tiny"
    if not (checkpoint / "config.json").exists():
        subprocess.run(
            [sys.executable, "-m", "smolvlm_video.testing", str(checkpoint), "--arch", "tiny"], check=True
        )
    settings = [str(checkpoint), 64, 1.0, 0, 0, 16, 0, ""]
    with tempfile.TemporaryDirectory() as scratch:
        app, url = start_app(checkpoint, Path(scratch) / "app.log")
        try:
            # Files in the outputs (the frame gallery) are not downloaded: a browser fetches the thumbnails
            # beside the text, and a client that downloads 64 frames one by one first measures its own loop.
            client = Client(url, verbose=False, download_files=False)
            warm = Path(__file__).resolve().parent.parent / "examples" / "clips" / "testsrc2.mp4"
            client.predict(handle_file(warm), QUESTION, None, *settings, api_name="/ask")  # loads the model
            core, demo = [], []
            for repeat in range(args.repeats):
                copy = remuxed_copy(video, Path(scratch), repeat)
                core.append(core_seconds(checkpoint, copy))
                demo.append(first_token_seconds(client, copy, settings))
                print(f"repeat {repeat + 1}: core {core[-1]:.2f} s, app {demo[-1]:.2f} s", file=sys.stderr)
        finally:
            app.terminate()
            app.wait(timeout=30)
    core_median, demo_median = statistics.median(core), statistics.median(demo)
    print(f"\n3.5-minute 720p video, 64 frames, tiny checkpoint, median of {args.repeats}")
    print(f"core sample + preprocess: {core_median:.2f} s ({', '.join(f'{s:.2f}' for s in core)})")
    print(f"app first token:          {demo_median:.2f} s ({', '.join(f'{s:.2f}' for s in demo)})")
    print(f"ratio app / core:         {demo_median / core_median:.2f}x (goal: at most 1.3x)")


if __name__ == "__main__":
    main()
