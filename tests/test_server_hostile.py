"""`serve` against hostile and careless clients: no request makes it fetch an internal address, grow its
memory without bound, do work for nobody, or answer 500.

No test sends a packet beyond loopback: a fake resolver maps test names to addresses, and a refused
address is refused before any connection is opened (the tests count connections).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import http.server
import json
import socket
import threading
import time
from pathlib import Path

import httpcore
import pytest
from conftest import requires_ffmpeg
from test_server import IMAGE, KEY, VIDEO, data_uri, message, metric, post, serving, video_part

pytestmark = [pytest.mark.slow, requires_ffmpeg]

httpx = pytest.importorskip("httpx")
openai = pytest.importorskip("openai")

REFUSED_URLS = [
    "http://127.0.0.1:{port}/clip.mp4",
    "http://localhost:{port}/clip.mp4",
    "http://2130706433:{port}/clip.mp4",  # 127.0.0.1 as one decimal number
    "http://127.1:{port}/clip.mp4",
    "http://[::1]:{port}/clip.mp4",
    "http://[::ffff:127.0.0.1]:{port}/clip.mp4",
    "http://[64:ff9b::7f00:1]:{port}/clip.mp4",  # NAT64 of 127.0.0.1
    "http://[2002:7f00:1::]:{port}/clip.mp4",  # 6to4 of 127.0.0.1
    "http://169.254.169.254/latest/meta-data/",  # the cloud's metadata address
    "http://10.0.0.1/clip.mp4",
    "http://0.0.0.0:{port}/clip.mp4",
    "http://100.64.0.1/clip.mp4",  # shared CGNAT space
    "http://cdn.example.test/clip.mp4",  # a name that resolves to a private address (the fake resolver)
    "http://mixed.example.test/clip.mp4",  # a name with a public and a private address
]
FAKE_NAMES = {
    "cdn.example.test": ["192.168.1.20"],
    "mixed.example.test": ["93.184.215.14", "10.1.2.3"],
    "media.test": ["127.0.0.1"],  # the operator's own media host, allowed by name in some tests
}


@pytest.fixture
def fake_dns(monkeypatch):
    """Resolve the test names to their addresses; anything else as the system does (numbers, localhost)."""
    real = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        if isinstance(host, str) and host in FAKE_NAMES:
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in FAKE_NAMES[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


@pytest.fixture
def connections(monkeypatch, fetching) -> list[tuple[str, int]]:
    """Every TCP connection a fetch opens, as (address, port): the test's own to the server left out."""
    opened: list[tuple[str, int]] = []
    real = httpcore.SyncBackend.connect_tcp
    server_port = int(fetching["url"].rsplit(":", 1)[1])

    def connect(self, host, port, *args, **kwargs):
        if port != server_port:
            opened.append((host, port))
        return real(self, host, port, *args, **kwargs)

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect)
    return opened


@contextlib.contextmanager
def media_server(folder: Path, handler_class=None):
    """A loopback HTTP server of `folder`; yields (port, the paths it was asked for)."""
    asked: list[str] = []

    class Handler(handler_class or http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], asked
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def fetching(tiny_model, shared):
    """A server that fetches URLs, allowing the operator's host media.test."""
    with serving(
        tiny_model, shared, fetch_seconds=2.0, fetch_hosts=("media.test",), max_new_tokens=2048
    ) as s:
        yield s


def assert_openai_error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def still_answers(server) -> None:
    assert post(server, message("Still there?")).status_code == 200


# --- URL fetching ---


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_internal_addresses_are_refused_before_any_connection(fetching, shared, fake_dns, connections, url):
    with media_server(shared) as (port, asked):
        response = post(fetching, message(video_part(url.format(port=port))))
    error = assert_openai_error(response, 400)
    assert (
        error["message"] == "Could not fetch messages[0].content[0]." and error["code"] == "url_fetch_failed"
    )
    assert connections == [] and asked == []


def test_a_redirect_to_loopback_from_an_allowed_host_is_refused_at_the_second_hop(
    fetching, shared, fake_dns, connections
):
    class Redirecting(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/to-loopback"):
                target = f"http://127.0.0.1:{self.server.server_address[1]}/clip.mp4"
            elif self.path.startswith("/to-allowed"):
                target = f"http://media.test:{self.server.server_address[1]}/clip.mp4"
            else:
                return super().do_GET()
            self.send_response(302)
            self.send_header("Location", target)
            self.end_headers()

    with media_server(shared, Redirecting) as (port, asked):
        refused = post(fetching, message(video_part(f"http://media.test:{port}/to-loopback")))
        followed = post(fetching, message(video_part(f"http://media.test:{port}/to-allowed")))
    assert_openai_error(refused, 400)
    assert followed.status_code == 200  # the same host by its allowed name: every hop is checked alike
    assert asked == ["/to-loopback", "/to-allowed", "/clip.mp4"]  # the loopback hop was never opened


def test_a_trickling_download_ends_at_the_deadline(fetching, fake_dns):
    class Trickle(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(1 << 20))
            self.end_headers()
            with contextlib.suppress(OSError):
                for _ in range(40):  # 100 bytes every 0.5 s: each read is quick, the whole is not
                    self.wfile.write(b"x" * 100)
                    self.wfile.flush()
                    time.sleep(0.5)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        started = time.monotonic()
        response = post(fetching, message(video_part(f"http://media.test:{server.server_address[1]}/slow")))
        took = time.monotonic() - started
    finally:
        server.shutdown()
    assert_openai_error(response, 400)
    assert took < 2.0 + 1.5  # --fetch-seconds 2, for the whole download


def test_only_http_and_https_are_fetched(fetching):
    for url in ("ftp://media.test/clip.mp4", "gopher://127.0.0.1/x", "file:///etc/passwd"):
        assert_openai_error(post(fetching, message(video_part(url))), 400)


# --- bad requests: a 400 or 413 in OpenAI's shape, never a 500 ---


def deep_schema(depth: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


BAD_BODIES = [
    ({**message("hi"), "fps": 1e308}, 400, "fps"),
    (message(video_part("/tmp/clip\x00.mp4")), 400, "messages[0].content[0]"),
    (message(video_part("/" + "a" * 5000)), 400, "messages[0].content[0]"),
    (message(video_part("http://[::1")), 400, "messages[0].content[0]"),
    ({**message("hi"), "response_format": {"type": "json_schema", "json_schema": {"name": "deep",
      "schema": deep_schema(400)}}}, 400, None),
    ({**message("hi"), "response_format": {"type": "json_schema", "json_schema": {"name": "deep",
      "schema": deep_schema(60)}}}, 400, "response_format"),
    ({**message("hi"), "stream": "no"}, 400, "stream"),
    ({**message("hi"), "n": True}, 400, "n"),
    ({**message("hi"), "temperature": "0.5"}, 400, "temperature"),
    ({**message("hi"), "max_tokens": 2.5}, 400, "max_tokens"),
    ({"model": "tiny", "messages": "hi"}, 400, "messages"),
    ({"model": "tiny", "messages": [{"role": "robot", "content": "hi"}]}, 400, "messages[0].role"),
    (message([{"type": "video_url"}]), 400, "messages[0].content[0]"),
    (message([{"type": "sound", "sound": "x"}]), 400, "messages[0].content[0].type"),
    ({**message("hi"), "surprise": 1}, 400, "surprise"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "param"), BAD_BODIES)
def test_bad_requests_are_refused_naming_the_field(fetching, body, status, param):
    error = assert_openai_error(post(fetching, body), status)
    assert error["param"] == param, error
    still_answers(fetching)


def test_json_nested_100000_deep_is_a_400(fetching):
    raw = b'{"model": "tiny", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert_openai_error(post(fetching, None, raw=raw), 400)
    still_answers(fetching)


def test_fastapi_own_errors_come_in_openai_shape(fetching):
    headers = {"Authorization": f"Bearer {KEY}"}
    assert_openai_error(httpx.get(f"{fetching['url']}/v1/nothing", headers=headers), 404)
    assert_openai_error(httpx.get(f"{fetching['url']}/v1/chat/completions", headers=headers), 405)
    assert_openai_error(httpx.get(f"{fetching['url']}/v1/models/gpt-4o", headers=headers), 404)
    assert httpx.get(f"{fetching['url']}/v1/models/tiny", headers=headers).json()["id"] == "tiny"
    assert_openai_error(httpx.get(f"{fetching['url']}/v1/models/tiny"), 401)  # one key check, every route
    assert_openai_error(httpx.get(f"{fetching['url']}/metrics"), 401)


# --- every field of OpenAI's request ---

# A value other than OpenAI's default, for each field the server accepts only at its default.
NOT_DEFAULT = {
    "frequency_penalty": 0.5, "presence_penalty": -0.5, "logprobs": True, "top_logprobs": 2,
    "logit_bias": {"42": 5}, "tools": [{"type": "function", "function": {"name": "f"}}],
    "tool_choice": "required", "functions": [{"name": "f"}], "function_call": {"name": "f"},
    "parallel_tool_calls": False, "modalities": ["text", "audio"],
    "audio": {"voice": "alloy", "format": "wav"}, "prediction": {"type": "content", "content": "x"},
    "reasoning_effort": "low", "web_search_options": {}, "moderation": {"input": {"mode": "block"}},
    "store": True, "service_tier": "flex", "verbosity": "low", "n": 2,
}  # fmt: skip
# Values of the fields the server ignores, as a client might send them.
IGNORED_VALUES = {"user": "user-1234", "metadata": {"team": "video"}, "safety_identifier": "hash-1",
                  "prompt_cache_key": "k", "prompt_cache_retention": "24h",
                  "prompt_cache_options": {"ttl": "1h"}}  # fmt: skip
SUPPORTED = {"messages", "model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop",
             "seed", "response_format", "stream", "stream_options"}  # fmt: skip


def openai_fields() -> list[str]:
    from openai.types.chat.completion_create_params import CompletionCreateParamsBase

    return sorted({*CompletionCreateParamsBase.__annotations__, "stream"})


def test_every_openai_field_is_known_to_the_server():
    from smolvlm_video.server.protocol import DEFAULTS, IGNORED

    assert set(openai_fields()) == SUPPORTED | set(DEFAULTS) | set(IGNORED)
    assert set(NOT_DEFAULT) == set(DEFAULTS) and set(IGNORED_VALUES) == set(IGNORED)


@pytest.mark.parametrize("name", [n for n in openai_fields() if n not in SUPPORTED])
def test_an_openai_field_is_taken_at_its_default_and_refused_by_name_otherwise(fetching, name):
    from smolvlm_video.server.protocol import DEFAULTS

    base = {**message("hi"), "max_tokens": 1}
    for value in [None, *DEFAULTS.get(name, ()), *([IGNORED_VALUES[name]] if name in IGNORED_VALUES else [])]:
        assert post(fetching, {**base, name: value}).status_code == 200, (name, value)
    if name in NOT_DEFAULT:
        error = assert_openai_error(post(fetching, {**base, name: NOT_DEFAULT[name]}), 400)
        assert error["param"] == name and name in error["message"]


def test_the_official_client_with_openai_defaults_is_answered(fetching):
    client = openai.OpenAI(base_url=f"{fetching['url']}/v1", api_key=KEY, max_retries=0)
    answer = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "Hi"}], max_tokens=2, seed=7, user="u",
        frequency_penalty=0, presence_penalty=0, logprobs=False, tools=[], metadata={"a": "b"},
    )  # fmt: skip
    assert answer.usage.completion_tokens == 2


def test_a_seed_gives_the_same_sampled_answer(fetching):
    body = {**message("Tell me something."), "max_tokens": 12, "temperature": 1.0}
    answers = [
        post(fetching, {**body, "seed": seed}).json()["choices"][0]["message"]["content"]
        for seed in (1, 1, 2)
    ]
    assert answers[0] == answers[1] != answers[2]


def test_temperature_zero_is_greedy_whatever_top_p(fetching):
    body = {**message("Tell me something."), "max_tokens": 12}
    greedy = post(fetching, body).json()["choices"][0]["message"]["content"]
    for top_p in (0.1, 0.5, 0.9):
        answer = post(fetching, {**body, "temperature": 0, "top_p": top_p}).json()
        assert answer["choices"][0]["message"]["content"] == greedy


# --- stop strings ---


def test_a_stop_string_across_a_token_boundary_never_reaches_the_client(fetching, tiny_model):
    body = {**message("Tell me a story."), "max_tokens": 48}
    whole = post(fetching, body).json()
    text = whole["choices"][0]["message"]["content"]
    tokenizer = tiny_model.processor.tokenizer
    starts = [start for start, _ in tokenizer(text, return_offsets_mapping=True)["offset_mapping"]]
    stop = next(
        text[at - 1 : at + 1]
        for at in starts[4:]  # the last character of one token and the first of the next, found first there
        if text[at - 1 : at + 1].isprintable()
        and " " not in text[at - 1 : at + 1]
        and "\ufffd" not in text[at - 1 : at + 1]
        and text.find(text[at - 1 : at + 1]) == at - 1
    )
    stopped = post(fetching, {**body, "stop": [stop]}).json()
    streamed = stream_text(fetching, {**body, "stop": [stop]})
    expected = text[: text.index(stop)].strip()
    assert stopped["choices"][0]["message"]["content"] == expected == streamed
    assert stop not in streamed and stopped["choices"][0]["finish_reason"] == "stop"
    assert stopped["usage"]["completion_tokens"] < whole["usage"]["completion_tokens"]  # generation ended


def stream_text(server, body) -> str:
    headers = {"Authorization": f"Bearer {KEY}"}
    text = ""
    with httpx.stream("POST", f"{server['url']}/v1/chat/completions", json={**body, "stream": True},
                      headers=headers, timeout=60) as response:  # fmt: skip
        assert response.headers["cache-control"] == "no-cache"
        for line in response.iter_lines():
            if line.startswith("data: {"):
                for choice in json.loads(line[6:]).get("choices", []):
                    text += choice["delta"].get("content") or ""
    return text


# --- work only for requests that will be answered ---


def test_a_client_that_disconnects_stops_its_row(fetching):
    body = {**message("Tell me a very long story."), "max_tokens": 2048}
    before = metric(fetching, "smolvlm_generated_tokens_total")[""]
    control = post(fetching, body).json()
    assert control["usage"]["completion_tokens"] == 2048  # kept connected, it reaches max_tokens
    middle = metric(fetching, "smolvlm_generated_tokens_total")[""]
    headers = {"Authorization": f"Bearer {KEY}"}
    with contextlib.suppress(httpx.TimeoutException):  # the client gives up after half a second
        httpx.post(f"{fetching['url']}/v1/chat/completions", json=body, headers=headers, timeout=0.5)
    after, deadline = -1.0, time.monotonic() + 30
    while time.monotonic() < deadline:  # until the count stands still: the row has stopped
        now = metric(fetching, "smolvlm_generated_tokens_total")[""]
        if now == after:
            break
        after = now
        time.sleep(0.5)
    assert middle - before == 2048
    assert after - middle < 1024, after - middle  # stopped well below max_tokens


def test_a_full_queue_is_429_before_any_medium_is_decoded(tiny_model, shared, monkeypatch):
    from smolvlm_video.server import batching, media

    busy, release = threading.Event(), threading.Event()
    real, decoded = batching.answer_streamed, []

    def slow(*args, **kwargs):
        busy.set()
        assert release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(batching, "answer_streamed", slow)
    real_sample = media.sample_video
    monkeypatch.setattr(media, "sample_video", lambda *a, **k: decoded.append(1) or real_sample(*a, **k))
    with (
        serving(tiny_model, shared, max_queue=1, max_batch=1) as running,
        concurrent.futures.ThreadPoolExecutor(2) as pool,
    ):
        first = pool.submit(post, running, message("one"))  # taken by the model thread, held
        assert busy.wait(30)
        second = pool.submit(post, running, message("two"))  # waits in the queue
        while metric(running, "smolvlm_queue_length").get("", 0) < 1:
            time.sleep(0.05)
        third = post(running, message(video_part(data_uri(VIDEO, "video/mp4"))))
        release.set()
        assert first.result().status_code == 200 and second.result().status_code == 200
    assert (
        assert_openai_error(third, 429)["type"] == "rate_limit_error" and third.headers["Retry-After"] == "1"
    )
    assert decoded == []  # refused before its video was read


def test_a_stream_that_cannot_be_answered_is_a_plain_400(fetching, tiny_model):
    words = tiny_model.context_length  # a token a word at least: more than the context holds
    body = {**message("hello " * words), "max_tokens": 4, "stream": True}
    response = post(fetching, body)
    error = assert_openai_error(response, 400)
    assert (
        error["code"] == "context_length_exceeded"
        and "text/event-stream" not in response.headers["content-type"]
    )


def test_a_failure_after_the_stream_began_ends_with_an_error_then_done(tiny_model, shared, monkeypatch):
    from smolvlm_video.server import batching

    def fails_after_starting(*args, on_start, **kwargs):
        on_start()
        raise RuntimeError("the device fell over")

    monkeypatch.setattr(batching, "answer_streamed", fails_after_starting)
    with serving(tiny_model, shared) as running:
        response = post(running, {**message("hi"), "stream": True})
    events = [line for line in response.text.splitlines() if line.startswith("data: ")]
    assert response.status_code == 200 and events[-1] == "data: [DONE]"
    assert json.loads(events[-2][6:])["error"]["type"] == "server_error"
    assert "fell over" not in response.text


def test_compiled_grammars_are_kept_within_their_budget(tiny_model, monkeypatch):
    from smolvlm_video.model import grammar
    from smolvlm_video.model.schemas import JsonSchema

    monkeypatch.setattr(grammar, "GRAMMAR_CACHE_BYTES", 256 << 10)
    grammar._compiler.cache_clear()
    try:
        for n in range(300):
            properties = {f"field_{n}_{i}": {"type": "string"} for i in range(4)}
            grammar.grammar_processor(
                tiny_model, [JsonSchema.from_value({"type": "object", "properties": properties}, "t")]
            )
        compiler = grammar._compiler(
            tiny_model.processor.tokenizer, grammar._vocab_size(tiny_model), grammar._stop_ids(tiny_model)
        )
        assert 0 < compiler.get_cache_size_bytes() <= 2 * (256 << 10)  # the limit, and what one grammar adds
    finally:
        grammar._compiler.cache_clear()


def test_an_image_and_a_video_still_work_through_the_pydantic_models(fetching):
    video = data_uri(VIDEO, "video/mp4").split(",", 1)[1]
    content = [{"type": "image_url", "image_url": {"url": data_uri(IMAGE, "image/png"), "detail": "low"}},
               {"type": "input_video", "input_video": {"data": video}},
               {"type": "text", "text": "Compare them."}]  # fmt: skip
    messages = [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": content, "name": "a"},
    ]
    assert post(fetching, {**message(content), "messages": messages}).status_code == 200
