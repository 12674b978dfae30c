"""What batching gives the server: `serve --max-batch 1` against the default, under concurrent clients.

    python benchmarks/serve.py [--archs tiny,256M] [--requests 8] [--max-tokens 16] [--cache-dir DIR]

Each configuration starts `smolvlm-video serve` in its own process on a random-weight checkpoint of the real
shape (built once), then runs N clients at once (threads with the `openai` client), each sending
`--requests` streamed requests one after another, each with one video of 8 frames (examples/clips/testsrc2.mp4
at fps 2, as a data: URI) and `--max-tokens` new tokens (min_new_tokens is not an API field, so the random
weights may end an answer early; the token counts are printed). The tiny shape runs with 1, 4 and 16 clients,
the 256M shape with 1 and 4. Reported per configuration: requests per minute, p50 and p95 latency (to the last
chunk), and the median time to the first streamed text (random weights may write none: then it is the end).

Then, per shape, the first token: a request of one new token through the default server, against the same
request in-process through the core (`sample_video` on the file, `generate`); the server's overhead is
the difference.

    python benchmarks/serve.py --hostile [--archs tiny] [--hostile-requests 200]

With --hostile, per shape: 200 requests from 4 clients at once, a quarter each of normal video requests,
pixel bombs (a 4.5 MB MJPEG of 16000x16000 frames, made with ffmpeg), requests with a JSON schema never
seen before, and clients that disconnect after 0.3 s, against a fresh server answering 200 normal requests
the same way. Reported: each server's peak RSS (VmHWM) and their ratio (the goal: at most 1.3x), and the
statuses. Then the latency of /health, polled every 10 ms, while the server validates a request with a 1 MB
JSON schema (the goal: under 50 ms at most), on the hostile server right after its mix and on an idle one.
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from caption_throughput import make_checkpoint  # benchmarks/, beside this script
from machine import cpu_name

ROOT = Path(__file__).resolve().parent.parent
VIDEO = ROOT / "examples" / "clips" / "testsrc2.mp4"
QUESTION = "What happens in this video?"
SAMPLING = {"fps": 2.0, "max_frames": 8}
CLIENTS = {"tiny": (1, 4, 16), "256M": (1, 4)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(checkpoint: Path, max_batch: int, *extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "smolvlm_video", "serve", "--model", str(checkpoint),
               "--port", str(port), "--max-batch", str(max_batch), *extra]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    import httpx

    for _ in range(600):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start")


def one_request(client, model: str, video: str, max_tokens: int) -> tuple[float, float, int]:
    """(seconds to the first content, seconds to the end, completion tokens) of one streamed request."""
    started = time.perf_counter()
    first = None
    content = [{"type": "video_url", "video_url": {"url": video}}, {"type": "text", "text": QUESTION}]
    chunks = client.chat.completions.create(
        model=model,
        max_tokens=max_tokens,
        stream=True,
        stream_options={"include_usage": True},
        extra_body=SAMPLING,
        messages=[{"role": "user", "content": content}],
    )
    tokens = 0
    for chunk in chunks:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    end = time.perf_counter() - started
    return first if first is not None else end, end, tokens


def run_clients(url: str, model: str, clients: int, requests: int, max_tokens: int) -> dict[str, float]:
    from openai import OpenAI

    video = f"data:video/mp4;base64,{base64.b64encode(VIDEO.read_bytes()).decode()}"
    results: list[tuple[float, float, int]] = []
    lock = threading.Lock()

    def client_loop() -> None:
        client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=600)
        for _ in range(requests):
            result = one_request(client, model, video, max_tokens)
            with lock:
                results.append(result)

    one_request(
        OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0), model, video, max_tokens
    )  # warm
    started = time.perf_counter()
    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    latencies = sorted(end for _, end, _ in results)
    return {
        "per_minute": len(results) / wall * 60,
        "p50": statistics.median(latencies),
        "p95": latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))],
        "first": statistics.median(first for first, _, _ in results),
        "tokens": statistics.mean(tokens for _, _, tokens in results),
    }


def server_first_token(url: str, model: str) -> float:
    """Seconds to a request's first token through the server: a request of one new token, whole (median of 5
    after a warm-up). Random weights may write no visible text at all, so the first streamed text cannot
    stand for the first token; one token's request can."""
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=600)
    video = f"data:video/mp4;base64,{base64.b64encode(VIDEO.read_bytes()).decode()}"
    content = [{"type": "video_url", "video_url": {"url": video}}, {"type": "text", "text": QUESTION}]
    times = []
    for _ in range(6):
        started = time.perf_counter()
        client.chat.completions.create(model=model, max_tokens=1, extra_body=SAMPLING,
                                       messages=[{"role": "user", "content": content}])  # fmt: skip
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def in_process_first_token(checkpoint: Path) -> float:
    """The same request in this process through the core: the video sampled from its file, then one new token
    (median of 5 after a warm-up)."""
    from smolvlm_video import SamplingOptions, load_fitted
    from smolvlm_video.model.generate import generate
    from smolvlm_video.model.prompts import chat
    from smolvlm_video.options import GenerationOptions, ModelOptions
    from smolvlm_video.video import sample_video

    model, sampling = load_fitted(ModelOptions(str(checkpoint)), SamplingOptions(**SAMPLING))
    times = []
    for _ in range(6):
        started = time.perf_counter()
        generate(model, [chat(QUESTION, sample_video(VIDEO, sampling))], GenerationOptions(max_new_tokens=1))
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def data_uri(path: Path) -> str:
    return f"data:video/mp4;base64,{base64.b64encode(path.read_bytes()).decode()}"


def pixel_bomb(cache: Path) -> Path:
    """A 4.5 MB MJPEG AVI of three 16000x16000 frames (384 MB a frame once decoded), made once."""
    path = cache / "bomb-16000.avi"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=s=16000x16000:r=1:d=3",
                        "-c:v", "mjpeg", "-q:v", "31", str(path)], check=True)  # fmt: skip
    return path


def peak_rss_mb(server: subprocess.Popen) -> float:
    status = Path(f"/proc/{server.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))) / 1024


def hostile_body(kind: str, n: int, model: str, video: str, bomb: str) -> tuple[dict, float]:
    """A request of one kind (normal, bomb, schema, disconnect) and its client's timeout."""
    media = bomb if kind == "bomb" else video
    content = [{"type": "video_url", "video_url": {"url": media}}, {"type": "text", "text": QUESTION}]
    body = {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": content}], **SAMPLING}
    if kind == "schema":  # a schema never seen before: its grammar is compiled anew
        properties = {f"field_{n}_{i}": {"type": "string", "maxLength": 8} for i in range(4)}
        schema = {"type": "object", "properties": properties, "required": list(properties)}
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": f"s{n}", "schema": schema}}
        body["max_tokens"] = 128
    if kind == "disconnect":
        body["max_tokens"] = 1024
    return body, 0.3 if kind == "disconnect" else 600


def run_mix(
    url: str, kinds: list[str], model: str, video: str, bomb: str, clients: int = 4
) -> dict[int, int]:
    """Send one request of each kind in `kinds` from `clients` threads; the statuses they got."""
    import concurrent.futures

    import httpx

    def send(item: tuple[int, str]) -> int:
        body, timeout = hostile_body(item[1], item[0], model, video, bomb)
        try:
            return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=timeout).status_code
        except httpx.TimeoutException:
            return 0  # the client left

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        statuses = list(pool.map(send, enumerate(kinds)))
    return {status: statuses.count(status) for status in sorted(set(statuses))}


def health_while_validating(url: str, model: str) -> float:
    """The slowest /health answer (seconds) while the server validates a request with a 1 MB JSON schema."""
    import httpx

    properties = {
        f"property_number_{i:06d}": {"type": "string", "description": "x" * 40} for i in range(12_000)
    }
    schema = {"type": "object", "properties": properties}
    response_format = {"type": "json_schema", "json_schema": {"name": "big", "schema": schema}}
    body = {"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "Hi"}],
            "response_format": response_format}  # fmt: skip
    done, slowest = threading.Event(), 0.0
    sender = threading.Thread(
        target=lambda: (httpx.post(f"{url}/v1/chat/completions", json=body, timeout=600), done.set())
    )
    with httpx.Client() as client:
        client.get(f"{url}/health")  # connected before timing
        sender.start()
        while not done.is_set():
            started = time.perf_counter()
            client.get(f"{url}/health")
            slowest = max(slowest, time.perf_counter() - started)
            time.sleep(0.01)
    sender.join()
    return slowest


def hostile(args: argparse.Namespace) -> None:
    video, bomb = data_uri(VIDEO), data_uri(pixel_bomb(args.cache_dir))
    count = args.hostile_requests
    mixed = [("normal", "bomb", "schema", "disconnect")[n % 4] for n in range(count)]
    for arch in args.archs.split(","):
        checkpoint = make_checkpoint(args.cache_dir, arch)
        peaks = {}
        for name, kinds in (("normal only", ["normal"] * count), ("hostile mix", mixed)):
            server, url = start_server(checkpoint, 8)
            try:
                statuses = run_mix(url, kinds, str(checkpoint), video, bomb)
                time.sleep(1)  # the disconnected rows stop
                peaks[name] = peak_rss_mb(server)
                print(f"{arch:5s} {name}: {count} requests, statuses {statuses}, "
                      f"peak RSS {peaks[name]:.0f} MB", flush=True)  # fmt: skip
                if name == "hostile mix":
                    slowest = health_while_validating(url, str(checkpoint))
                    print(f"{arch:5s} /health while a 1 MB schema is validated, right after the mix: "
                          f"slowest {slowest * 1000:.1f} ms")  # fmt: skip
            finally:
                server.terminate()
                server.wait()
        ratio = peaks["hostile mix"] / peaks["normal only"]
        print(f"{arch:5s} peak RSS, hostile mix against normal only: {ratio:.2f}x", flush=True)
        server, url = start_server(checkpoint, 8)  # an idle server: nothing else competes with the schema
        try:
            slowest = health_while_validating(url, str(checkpoint))
            print(
                f"{arch:5s} /health while a 1 MB schema is validated, idle: slowest {slowest * 1000:.1f} ms"
            )
        finally:
            server.terminate()
            server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--archs", default="tiny,256M")
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--first-token-only", action="store_true", help="Skip the concurrent clients.")
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "smolvlm-video-bench")
    parser.add_argument("--hostile", action="store_true", help="Peak memory under hostile requests instead.")
    parser.add_argument("--hostile-requests", type=int, default=200)
    args = parser.parse_args()
    if args.hostile:
        return hostile(args)
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; {args.requests} streamed requests a client, 8 frames, "
          f"{args.max_tokens} new tokens at most")  # fmt: skip
    for arch in args.archs.split(","):
        checkpoint = make_checkpoint(args.cache_dir, arch)
        for max_batch in (1, 8):
            server, url = start_server(checkpoint, max_batch)
            try:
                for clients in () if args.first_token_only else CLIENTS[arch]:
                    r = run_clients(url, str(checkpoint), clients, args.requests, args.max_tokens)
                    print(
                        f"{arch:5s} --max-batch {max_batch}  {clients:2d} clients: "
                        f"{r['per_minute']:6.1f} requests/min  "
                        f"p50 {r['p50']:6.2f} s  p95 {r['p95']:6.2f} s  first text {r['first']:6.2f} s  "
                        f"({r['tokens']:.1f} tokens an answer)",
                        flush=True,
                    )
                if max_batch == 8:
                    served = server_first_token(url, str(checkpoint))
            finally:
                server.terminate()
                server.wait()
        core = in_process_first_token(checkpoint)
        print(f"{arch:5s} first token: server {served:.3f} s, the core in-process {core:.3f} s, "
              f"overhead {served / core - 1:+.1%}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
