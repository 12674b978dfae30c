"""`serve`: the OpenAI-compatible server on loopback with the tiny checkpoint, through the official client."""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import json
import re
import socket
import threading
import time
from pathlib import Path

import jsonschema
import pytest
from conftest import FORGED, PLAIN, ffmpeg, forged_schema, requires_ffmpeg, special_counts

pytestmark = [pytest.mark.slow, requires_ffmpeg]

openai = pytest.importorskip("openai")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

ROOT = Path(__file__).resolve().parent.parent
VIDEO = ROOT / "examples" / "clips" / "testsrc2.mp4"
IMAGE = ROOT / "examples" / "images" / "testcard.png"
SCENE = json.loads((ROOT / "examples" / "schemas" / "scene.json").read_text())
KEY = "test-key"


def data_uri(path: Path, kind: str) -> str:
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


@contextlib.contextmanager
def serving(model, shared: Path, **options):
    """The app on a free loopback port, in a thread of this process: {"url", "shared"}."""
    from smolvlm_video.options import SamplingOptions
    from smolvlm_video.server.app import create_app
    from smolvlm_video.server.options import ServerOptions

    sampling = SamplingOptions(max_frames=4, frame_side=64)
    defaults = {"api_key": KEY, "allowed_media_paths": (shared,), "max_body_mb": 2, "max_new_tokens": 64,
                "sampling": sampling, "model_names": ("tiny",)}  # fmt: skip
    settings = ServerOptions(**{**defaults, **options})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(model, settings), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    while not running.started:
        time.sleep(0.05)
    try:
        yield {"url": f"http://127.0.0.1:{port}", "shared": shared}
    finally:
        running.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def server(tiny_model, shared):
    with serving(tiny_model, shared) as running:
        yield running


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=f"{server['url']}/v1", api_key=KEY, max_retries=0, timeout=120)


def ask(client, content, **extra):
    return client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": content}], max_tokens=6, **extra
    )


def test_models_are_listed(client):
    assert "tiny" in [model.id for model in client.models.list()]


def test_a_text_an_image_and_a_video_chat(client):
    text = ask(client, "Hello?")
    image = ask(client, [{"type": "image_url", "image_url": {"url": data_uri(IMAGE, "image/png")}},
                         {"type": "text", "text": "What is this?"}])  # fmt: skip
    video = ask(client, [{"type": "video_url", "video_url": {"url": data_uri(VIDEO, "video/mp4")}},
                         {"type": "text", "text": "What happens?"}])  # fmt: skip
    for answer in (text, image, video):
        assert answer.object == "chat.completion" and isinstance(answer.choices[0].message.content, str)
        assert answer.usage.completion_tokens == 6 and answer.choices[0].finish_reason == "length"
    assert video.usage.prompt_tokens > image.usage.prompt_tokens > text.usage.prompt_tokens


def test_input_video_in_both_forms_is_the_same_as_a_video_url(client):
    payload = base64.b64encode(VIDEO.read_bytes()).decode()
    question = {"type": "text", "text": "What happens?"}
    plain = ask(client, [{"type": "input_video", "input_video": payload}, question])
    boxed = ask(client, [{"type": "input_video", "input_video": {"data": payload}}, question])
    url = ask(client, [{"type": "video_url", "video_url": {"url": data_uri(VIDEO, "video/mp4")}}, question])
    assert (
        plain.choices[0].message.content == boxed.choices[0].message.content == url.choices[0].message.content
    )


def test_a_shared_file_is_read_by_path_and_by_file_url(client, server):
    path = server["shared"] / "clip.mp4"
    by_path = ask(
        client, [{"type": "video_url", "video_url": {"url": str(path)}}, {"type": "text", "text": "?"}]
    )
    by_url = ask(
        client, [{"type": "video_url", "video_url": {"url": path.as_uri()}}, {"type": "text", "text": "?"}]
    )
    assert by_path.choices[0].message.content == by_url.choices[0].message.content


def test_a_two_turn_chat(client):
    answer = client.chat.completions.create(
        model="tiny",
        max_tokens=4,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "And now?"},
        ],
    )
    assert answer.usage.prompt_tokens > ask(client, "And now?").usage.prompt_tokens


def test_streamed_chunks_join_to_the_answer_and_count_usage(client):
    content = [{"type": "video_url", "video_url": {"url": data_uri(VIDEO, "video/mp4")}},
               {"type": "text", "text": "What happens?"}]  # fmt: skip
    whole = ask(client, content)
    chunks = list(ask(client, content, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_a_json_schema_answer_validates(client):
    answer = client.chat.completions.create(
        model="tiny",
        max_tokens=64,
        messages=[{"role": "user", "content": [
            {"type": "video_url", "video_url": {"url": data_uri(VIDEO, "video/mp4")}},
            {"type": "text", "text": "Describe the scene."}]}],
        response_format={"type": "json_schema", "json_schema": {"name": "scene", "schema": SCENE}},
    )  # fmt: skip
    jsonschema.validate(json.loads(answer.choices[0].message.content), SCENE)


# --- errors: OpenAI's shape, the right status, no server path or traceback ---


def post(server, body, key=KEY, raw: bytes | None = None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    url = f"{server['url']}/v1/chat/completions"
    if raw is not None:
        return httpx.post(
            url, content=raw, headers={**headers, "Content-Type": "application/json"}, timeout=60
        )
    return httpx.post(url, json=body, headers=headers, timeout=60)


def video_part(url: str) -> list[dict]:
    return [{"type": "video_url", "video_url": {"url": url}}, {"type": "text", "text": "?"}]


def message(content) -> dict:
    return {"model": "tiny", "max_tokens": 4, "messages": [{"role": "user", "content": content}]}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (message(video_part("/etc/passwd")), 400, "not under a folder"),
        (message(video_part("file:///etc/hostname")), 400, "not under a folder"),
        (message(video_part("https://example.com/clip.mp4")), 400, "does not fetch URLs"),
        (message(video_part("data:video/mp4;base64,@@not base64@@")), 400, "does not decode"),
        (message(video_part("data:video/mp4;base64," + base64.b64encode(b"just some text\n").decode())), 400,
         "text file"),
        ({**message("hi"), "model": "gpt-4o"}, 404, "not served here"),
        ({**message("hi"), "logprobs": True}, 400, "logprobs"),
        ({**message("hi"), "n": 2}, 400, "n is not supported"),
        ({**message("hi"), "max_tokens": 10_000}, 400, "max_tokens"),
        ({**message("hi"), "max_frames": 500}, 400, "--max-frames"),
    ],
)  # fmt: skip
def test_bad_requests_get_openai_errors_that_name_the_part_not_the_server(server, body, status, words):
    response = post(server, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and words in error["message"]
    assert (
        "/tmp" not in response.text
        and "Traceback" not in response.text
        and "smolvlm-serve" not in response.text
    )
    if "content" in str(body["messages"][0]["content"]) and status == 400 and "url" in str(body):
        assert error["param"] == "messages[0].content[0]"


def test_a_missing_or_wrong_key_is_401(server):
    assert post(server, message("hi"), key=None).status_code == 401
    response = post(server, message("hi"), key="wrong")
    assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"


def test_a_body_over_the_limit_is_413(server):
    response = post(server, None, raw=b"x" * (3 << 20))
    assert response.status_code == 413 and "limit" in response.json()["error"]["message"]


def test_health_answers_without_a_key(server):
    assert httpx.get(f"{server['url']}/health").json() == {"status": "ok"}


def test_the_client_example_in_the_docs(server, tiny_model, capsys):
    from doc_examples import blocks

    (block,) = [b for b in blocks("python") if "from openai import OpenAI" in b.text]
    code = block.text.replace('"http://127.0.0.1:8000/v1"', repr(f"{server['url']}/v1"))
    code = code.replace('api_key="unused"', f"api_key={KEY!r}").replace('"clip.mp4"', repr(str(VIDEO)))
    code = code.replace('model="256M"', 'model="tiny"').replace("max_tokens=64", "max_tokens=4")
    code = code.replace('"max_frames": 16', '"max_frames": 4')  # the test server's --max-frames
    exec(compile(code, block.where, "exec"), {"__name__": "__docs__"})
    assert "completion_tokens=4" in capsys.readouterr().out


def test_serving_beyond_loopback_without_a_key_is_refused(tiny_checkpoint):
    from click.testing import CliRunner
    from smolvlm_video.cli.main import cli

    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--model", str(tiny_checkpoint)])
    assert result.exit_code == 2 and "--api-key" in result.output and "--no-auth" in result.output


# --- batching, the queue, and a server that stays live ---


def metric(server, name: str) -> dict[str, float]:
    text = httpx.get(f"{server['url']}/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
    return {labels: float(value) for labels, value in re.findall(rf"^{name}(\S*) (\S+)$", text, re.MULTILINE)}


def test_eight_concurrent_requests_are_answered_in_at_most_three_batches_each_as_alone(client, server):
    questions = [f"Question number {n}: what is {n} + {n}?" for n in range(8)]
    alone = [ask(client, question).choices[0].message.content for question in questions]
    before = metric(server, "smolvlm_batches_total")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda q: ask(client, q).choices[0].message.content, questions))
    after = metric(server, "smolvlm_batches_total")
    batches = sum(after.values()) - sum(before.values())
    assert together == alone and 1 <= batches <= 3, (batches, after)


def test_the_server_stays_live_while_a_video_decodes(client, server, monkeypatch):
    from smolvlm_video.server import media

    reached, release = threading.Event(), threading.Event()
    real = media.sample_video

    def held(*args, **kwargs):
        reached.set()
        assert release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(media, "sample_video", held)
    content = [
        {"type": "video_url", "video_url": {"url": data_uri(VIDEO, "video/mp4")}},
        {"type": "text", "text": "?"},
    ]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        video = pool.submit(ask, client, content)
        assert reached.wait(30)
        assert httpx.get(f"{server['url']}/health", timeout=5).json() == {"status": "ok"}
        assert ask(client, "Meanwhile?").choices[0].message.content is not None  # accepted and answered
        assert not video.done()
        release.set()
        assert video.result(timeout=60).usage.completion_tokens == 6


def test_a_streaming_client_that_leaves_frees_its_row(client, server):
    body = {**message("Tell me a long story."), "max_tokens": 64, "stream": True}
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.stream("POST", f"{server['url']}/v1/chat/completions", json=body, headers=headers) as response:
        first = next(response.iter_lines())
        assert first.startswith("data: ")
    assert ask(client, "Still there?").choices[0].message.content is not None


def test_a_bug_of_ours_is_a_500_that_says_nothing_of_the_server(tiny_model, shared, monkeypatch):
    from smolvlm_video.server import batching

    def broken(*args, **kwargs):
        raise RuntimeError("boom in /srv/secret/models.py")

    monkeypatch.setattr(batching, "answer_streamed", broken)
    with serving(tiny_model, shared) as running:
        response = post(running, message("hi"))
    assert response.status_code == 500 and response.json()["error"]["type"] == "server_error"
    assert "secret" not in response.text and "Traceback" not in response.text and "boom" not in response.text


def test_urls_are_fetched_where_allowed_within_the_medium_limit(tiny_model, shared, tmp_path, client):
    import functools
    import http.server

    (tmp_path / "clip.mp4").write_bytes(VIDEO.read_bytes())
    (tmp_path / "big.mp4").write_bytes(bytes(2 << 20))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    files = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=files.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{files.server_address[1]}"
    try:
        # Loopback is never fetched unless the operator allows it, as here (--allow-fetch-host).
        allowed = {"fetch_seconds": 10, "max_media_mb": 1, "fetch_hosts": ("127.0.0.0/8",)}
        with serving(tiny_model, shared, **allowed) as running:
            fetched = post(running, message(video_part(f"{base}/clip.mp4")))
            missing = post(running, message(video_part(f"{base}/nothing.mp4")))
            big = post(running, message(video_part(f"{base}/big.mp4")))
    finally:
        files.shutdown()
    sent = ask(client, video_part(data_uri(VIDEO, "video/mp4"))).choices[0].message.content
    assert fetched.status_code == 200 and fetched.json()["choices"][0]["message"]["content"] is not None
    error = missing.json()["error"]  # the far side's answer is not told: the log has it
    assert missing.status_code == 400 and error["message"] == "Could not fetch messages[0].content[0]."
    assert "404" not in missing.text
    assert big.status_code == 413 and big.json()["error"]["param"] == "messages[0].content[0]"
    assert sent is not None


def test_a_json_object_answer_is_an_object_and_uploads_leave_no_file(client):
    import tempfile

    answer = client.chat.completions.create(
        model="tiny", max_tokens=64, messages=[{"role": "user", "content": "Some JSON?"}],
        response_format={"type": "json_object"},
    )  # fmt: skip
    content, finish = answer.choices[0].message.content, answer.choices[0].finish_reason
    assert content.startswith("{")  # an object, whole unless the random weights' keys ran past max_tokens
    assert finish == "length" or isinstance(json.loads(content), dict)
    ask(client, video_part(data_uri(VIDEO, "video/mp4")))
    assert not list(Path(tempfile.gettempdir()).glob("smolvlm-serve-*"))


def test_requests_with_different_settings_are_answered_in_separate_calls(client, server):
    before = metric(server, "smolvlm_batches_total")
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        short = pool.submit(ask, client, "One?")
        longer = pool.submit(lambda: client.chat.completions.create(
            model="tiny", max_tokens=9, messages=[{"role": "user", "content": "Two?"}]))  # fmt: skip
        assert short.result().usage.completion_tokens == 6 and longer.result().usage.completion_tokens == 9
    after = metric(server, "smolvlm_batches_total")
    assert after.get('{size="1"}', 0) - before.get('{size="1"}', 0) == 2


def test_forged_special_tokens_are_answered_as_text(server, tiny_model, prompts):
    counts = []
    for text in (FORGED, PLAIN):
        image = {"type": "image_url", "image_url": {"url": data_uri(IMAGE, "image/png")}}
        body = {
            "model": "tiny",
            "max_tokens": 48,
            "messages": [
                {"role": "system", "content": text},
                {"role": "user", "content": [image, {"type": "text", "text": text}]},
                {"role": "assistant", "content": text},
                {"role": "user", "content": text},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "s", "schema": forged_schema(text)},
            },
        }
        before = len(prompts)
        for streamed in (False, True):
            reply = httpx.post(f"{server['url']}/v1/chat/completions", json={**body, "stream": streamed},
                               headers={"Authorization": f"Bearer {KEY}"}, timeout=120)  # fmt: skip
            assert reply.status_code == 200 and '"error"' not in reply.text, reply.text
        counts.append(special_counts(tiny_model.processor.tokenizer, prompts[before:]))
    assert counts[0] == counts[1] and counts[0]


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e308"])
@pytest.mark.parametrize("name", ["fps", "start", "end", "temperature", "top_p"])
def test_non_finite_and_huge_numbers_are_400_naming_the_field(server, name, value):
    body = f'{{"model": "tiny", "messages": [{{"role": "user", "content": "Hi"}}], "{name}": {value}}}'
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    reply = httpx.post(f"{server['url']}/v1/chat/completions", content=body, headers=headers)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["param"] == name


def test_a_video_over_the_pixel_budget_is_413_before_decoding(client, server):
    huge = server["shared"] / "huge.avi"
    ffmpeg("-f", "lavfi", "-i", "color=s=16000x16000:r=1:d=1", "-c:v", "mjpeg", "-q:v", "31", str(huge))
    with pytest.raises(openai.APIStatusError) as refused:
        ask(client, [{"type": "video_url", "video_url": {"url": str(huge)}}, {"type": "text", "text": "?"}])
    assert refused.value.status_code == 413
    error = refused.value.body
    assert (
        error["code"] == "too_large"
        and "16000x16000" in error["message"]
        and str(huge) not in error["message"]
    )
    assert ask(client, "Still there?").choices[0].message.content is not None
