"""The Gradio app, launched on 127.0.0.1 with the tiny checkpoint and driven through gradio_client."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from conftest import FORGED, PLAIN, ffmpeg, forged_schema, requires_ffmpeg, special_counts
from PIL import Image

gr = pytest.importorskip("gradio")
from gradio_client import Client, handle_file  # noqa: E402
from smolvlm_video.demo import DemoConfig, build_demo, launch_kwargs  # noqa: E402
from smolvlm_video.demo import models as models_module  # noqa: E402
from smolvlm_video.demo.conversation import UploadRefused, check_upload  # noqa: E402
from smolvlm_video.demo.settings import Settings  # noqa: E402

from smolvlm_video.options import ModelOptions  # noqa: E402

pytestmark = [pytest.mark.slow, requires_ffmpeg]
MAX_FILE_SIZE = 1_000_000  # bytes: uploads over this are refused


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def config(tiny_checkpoint: Path) -> DemoConfig:
    return DemoConfig(
        model=str(tiny_checkpoint),
        models=(str(tiny_checkpoint),),
        device="cpu",
        max_frames=8,
        max_new_tokens=24,
        max_file_size=f"{MAX_FILE_SIZE}b",
    )


@pytest.fixture(scope="module")
def app_url(config: DemoConfig):
    demo = build_demo(config)
    kwargs = launch_kwargs(config, server_name="127.0.0.1", server_port=free_port())
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, **kwargs)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def settings(config: DemoConfig) -> list:
    """model, max_frames, fps, start, end, max_new_tokens, temperature, system"""
    return [config.model, 8, 1.0, 0, 0, 24, 0, ""]


@pytest.fixture
def client(app_url: str) -> Client:
    return Client(app_url, verbose=False)


@pytest.fixture(scope="module")
def png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("images") / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path)
    return path


# `settings` above has the first eight only, as gradio_client callers written before `listen` send: they keep
# working. A raw HTTP call sends every input (Gradio requires it), `listen` too.
SETTINGS = ["model", "max_frames", "fps", "start", "end", "max_new_tokens", "temperature", "system", "listen"]


def test_every_output_is_named_and_optional_parameters_have_defaults(client):
    endpoints = client.view_api(return_format="dict")["named_endpoints"]
    for name, endpoint in endpoints.items():
        assert all(r["label"] and not r["label"].startswith("value_") for r in endpoint["returns"]), name
        required = [p["parameter_name"] for p in endpoint["parameters"] if not p["parameter_has_default"]]
        assert set(required) <= {"message", "video", "media", "question"}, (name, required)


def test_named_endpoints_name_every_setting(client):
    endpoints = client.view_api(return_format="dict")["named_endpoints"]
    names = {name: [p["parameter_name"] for p in e["parameters"]] for name, e in endpoints.items()}
    assert names == {
        "/chat": ["message", "json_schema", *SETTINGS],
        "/analyze": ["video", "prompt", "split", "json_schema", *SETTINGS],
        "/describe_video": ["video", "prompt", *SETTINGS],
        "/ask": ["media", "question", "json_schema", *SETTINGS],
    }


def test_image_question(client, settings, png):
    answer, gallery, seen = client.predict(
        handle_file(png), "What is this?", None, *settings, api_name="/ask"
    )
    assert isinstance(answer, str) and answer
    assert [item["caption"] for item in gallery] == ["image"] and seen == "An image, 64x48."


def test_ask_takes_a_json_schema(client, settings, png):
    properties = {"colour": {"enum": ["red", "green", "blue"]}, "busy": {"type": "boolean"}}
    schema = {"type": "object", "properties": properties, "required": ["colour", "busy"]}
    answer, _, _ = client.predict(
        handle_file(png),
        "What is this?",
        json.dumps(schema),
        *settings[:5],
        200,
        *settings[6:],
        api_name="/ask",
    )
    jsonschema.validate(json.loads(answer), schema)
    with pytest.raises(Exception, match="not a valid JSON schema"):
        client.predict(handle_file(png), "What?", '{"type": 5}', *settings, api_name="/ask")


def test_the_chat_takes_a_json_schema(client, settings, png):
    schema = {"type": "object", "properties": {"colour": {"enum": ["red", "green"]}}, "required": ["colour"]}
    message = {"text": "Which colour?", "files": [handle_file(png)]}
    answer, _, seen = client.predict(
        message, json.dumps(schema), *settings[:5], 64, *settings[6:], api_name="/chat"
    )
    assert json.loads(answer)["colour"] in ("red", "green") and seen.startswith("An image, 64x48.")


def test_video_answer_streams_after_the_frames(client, settings, clip):
    job = client.submit(handle_file(clip), "Describe it.", *settings, api_name="/describe_video")
    updates = list(job)
    first_answer, gallery, seen = updates[0]
    assert first_answer == "" and len(gallery) == 3 and seen.startswith("3 frames of 64x48 from 00:00")
    assert [Image.open(item["image"]).size for item in gallery] == [(64, 48)] * 3  # what the model got
    answers = [update[0] for update in updates]
    assert len(set(answers)) >= 3  # empty, then the answer in at least two pieces
    assert all(b.startswith(a.strip()) for a, b in itertools.pairwise(answers))
    assert job.outputs()[-1][0] == answers[-1]


def test_settings_are_optional_and_named(client, clip):
    _, gallery, seen = client.predict(
        video=handle_file(clip), prompt="Describe it.", max_new_tokens=4, api_name="/describe_video"
    )
    assert len(gallery) == 3 and seen.startswith("3 frames")  # the app's defaults for the rest


def test_two_turns_about_one_video(client, settings, clip):
    first = client.predict(
        {"text": "What is this?", "files": [handle_file(clip)]}, None, *settings, api_name="/chat"
    )
    second = client.predict({"text": "And at the end?", "files": []}, None, *settings, api_name="/chat")
    assert first[0] and second[0]
    assert second[2] == first[2]  # the follow-up (no upload of its own) still shows the model the video


def test_stop_ends_the_generation_thread(client, config, clip):
    long_answer = [config.model, 8, 1.0, 0, 0, 2048, 0, ""]
    job = client.submit(handle_file(clip), "Describe it.", *long_answer, api_name="/describe_video")
    deadline = time.monotonic() + 60
    while len(job.outputs()) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _generating(), "generation should be running"
    job.cancel()
    deadline = time.monotonic() + 10
    while _generating() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _generating(), "the generation thread is still running after Stop"


def _generating() -> bool:
    return any(thread.name == "smolvlm-generate" and thread.is_alive() for thread in threading.enumerate())


BAD_UPLOADS = {  # name: (bytes or maker, endpoint, words the error must contain)
    "notes.txt": (b"just some text\n" * 10, "/ask", "Invalid file type"),
    "notes.mp4": (b"just some text\n" * 10, "/ask", "text file, not a video"),
    # Seeded: some random bytes read as a container without a video stream, another message.
    "corrupt.mp4": (random.Random(0).randbytes(50_000), "/ask", "cannot be read as a video"),
    "empty.mp4": (b"", "/ask", "empty"),
}


@pytest.mark.parametrize("name", list(BAD_UPLOADS))
def test_bad_upload_is_an_error_and_the_app_goes_on(client, settings, png, tmp_path, name):
    content, endpoint, words = BAD_UPLOADS[name]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(Exception, match=words) as caught:
        client.predict(
            handle_file(path),
            "What is this?",
            *([None] if endpoint == "/ask" else []),
            *settings,
            api_name=endpoint,
        )
    assert gr.utils.get_upload_folder() not in str(caught.value)  # named by its name, not its server path
    assert client.predict(handle_file(png), "And this?", None, *settings, api_name="/ask")[2].startswith(
        "An image"
    )


def test_video_with_no_frames(client, settings, media_dir, png):
    from conftest import ffmpeg

    audio = media_dir / "only sound.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac", str(audio))
    with pytest.raises(Exception, match="no video stream"):
        client.predict(handle_file(audio), "Describe it.", *settings, api_name="/describe_video")
    assert client.predict(handle_file(png), "And this?", None, *settings, api_name="/ask")[0]


def test_image_where_a_video_was_expected(client, settings, png):
    with pytest.raises(Exception, match="This is an image, not a video"):
        client.predict(handle_file(png), "Describe it.", *settings, api_name="/describe_video")


def test_oversize_upload_is_refused(client, settings, tmp_path, png):
    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(MAX_FILE_SIZE + 100_000))
    with pytest.raises(Exception, match=r"(?i)too large|exceeds|maximum"):
        client.predict(handle_file(big), "Describe it.", *settings, api_name="/describe_video")
    assert client.predict(handle_file(png), "And this?", None, *settings, api_name="/ask")[0]


def call_raw(url: str, endpoint: str, data: list) -> str:
    """Call an endpoint over plain HTTP, as any program could, bypassing gradio_client's uploads."""
    import httpx

    event = httpx.post(f"{url}gradio_api/call/{endpoint}", json={"data": data}, timeout=30).json()["event_id"]
    return httpx.get(f"{url}gradio_api/call/{endpoint}/{event}", timeout=60).text


def server_file(path: Path) -> dict:
    return {"path": str(path), "meta": {"_type": "gradio.FileData"}}


@pytest.mark.parametrize("endpoint", ["ask", "describe_video"])
def test_server_paths_are_refused(app_url, settings, clip, png, endpoint):
    schema = [""] if endpoint == "ask" else []  # a raw call sends every input
    reply = call_raw(app_url, endpoint, [server_file(clip), "Describe it.", *schema, *settings, False])
    assert "event: error" in reply and "frames of" not in reply  # a readable video, but not an upload
    assert "Only uploaded files can be used" in reply  # the app's own words, not Gradio's bare "error"
    reply = call_raw(app_url, "ask", [server_file(png), "And this?", "", *settings, False])
    assert "event: error" in reply


def test_chat_refuses_server_paths(app_url, settings, clip):
    message = {"text": "Describe it.", "files": [server_file(clip)]}
    reply = call_raw(app_url, "chat", [message, None, *settings, False])
    assert "event: error" in reply and "frames of" not in reply


def test_only_uploads_and_examples_are_read(tmp_path):
    allowed = [tmp_path / "uploads", Path("examples").resolve()]
    (tmp_path / "uploads").mkdir()
    with pytest.raises(UploadRefused):
        check_upload("/etc/hostname", allowed)
    with pytest.raises(UploadRefused):
        check_upload(str(tmp_path / "uploads" / ".." / "elsewhere.mp4"), allowed)
    assert check_upload(str(tmp_path / "uploads" / "a.mp4"), allowed).endswith("a.mp4")


def test_settings_build_the_options_the_cli_builds():
    import click
    from click.testing import CliRunner
    from smolvlm_video.cli.options import generation_options, sampling_options

    built = []

    @click.command()
    @sampling_options
    @generation_options
    def command(sampling, generation):
        built.append((sampling, generation))

    args = ["--max-frames", "16", "--fps", "2", "--start", "30", "--end", "90", "--max-new-tokens", "64",
            "--temperature", "0.5"]  # fmt: skip
    assert CliRunner().invoke(command, args).exit_code == 0
    settings = Settings("256M", 16, 2.0, 30, 90, 64, 0.5, "")
    assert [settings.options()] == built
    assert built[0][1].do_sample and built[0][0].start == 30.0


def test_config_from_environment():
    config = DemoConfig.from_env({"SMOLVLM_MODEL": "500M", "SMOLVLM_MAX_FRAMES": "16", "SMOLVLM_MCP": "1"})
    assert (config.model, config.max_frames, config.mcp_server) == ("500M", 16, True)
    assert config.models[0] == "256M" and "500M" in config.models
    custom = DemoConfig.from_env({"SMOLVLM_MODEL": "/models/mine", "SMOLVLM_MODELS": "256M"})
    assert custom.models == ("/models/mine", "256M")
    assert launch_kwargs(config)["allowed_paths"] == [str(config.examples_dir)]


def test_zerogpu_durations_follow_the_request():
    from smolvlm_video.demo.zerogpu import MIN_SECONDS, request_seconds

    image = request_seconds("256M", frames=17, max_new_tokens=64, most=120)
    video = request_seconds("256M", frames=64, max_new_tokens=512, most=120)
    bigger = request_seconds("2.2B", frames=64, max_new_tokens=512, most=120)
    assert MIN_SECONDS <= image < video < bigger <= 120
    assert request_seconds("/models/mine", 64, 512, most=120) == bigger  # unknown: costed as the largest
    assert request_seconds("2.2B", frames=64, max_new_tokens=4096, most=120) == 120
    assert request_seconds("256M", frames=1, max_new_tokens=1, most=120) == MIN_SECONDS


def test_zerogpu_reserves_what_each_request_needs(config, clip, monkeypatch):
    """spaces.GPU gets a function, called with the answer's own arguments (as spaces calls it)."""
    from demo_server import fake_spaces
    from smolvlm_video.demo.handlers import Handlers
    from smolvlm_video.demo.zerogpu import request_seconds

    reserved = fake_spaces(monkeypatch)
    handlers = Handlers(config)
    upload = handlers.allowed[0] / "zerogpu-test" / "clip.mp4"  # as if uploaded
    upload.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(clip, upload)
    settings = (config.model, 8, 1.0, None, None, 24, 0.0, "")
    answer = list(handlers.ask(str(upload), "What is it?", settings=Settings(*settings)))[-1][0]
    assert answer and reserved == [request_seconds(config.model, 3, 24, config.gpu_seconds)]


def test_preload_places_every_model_at_start_up(config, monkeypatch):
    from smolvlm_video.demo.handlers import Handlers

    assert DemoConfig.from_env({"SPACES_ZERO_GPU": "true"}).preload  # ZeroGPU requires it
    assert DemoConfig.from_env({"SPACES_ZERO_GPU": "true"}).compile == "off"  # each request may compile again
    assert not DemoConfig.from_env({"SPACES_ZERO_GPU": "true", "SMOLVLM_PRELOAD": "0"}).preload
    assert not DemoConfig.from_env({}).preload
    loaded: list[str] = []
    model = types.SimpleNamespace(compiled=False)  # what the cache warms up where it is compiled
    monkeypatch.setattr(models_module, "load", lambda options: loaded.append(options.name) or model)
    handlers = Handlers(dataclasses.replace(config, models=("256M", "500M"), preload=True))
    assert loaded == ["256M", "500M"] and handlers.models.held == ("256M", "500M")
    handlers.models.get(handlers.config.model_options("256M"))
    assert loaded == ["256M", "500M"]  # both kept: no reload on switching


def test_app_starts_on_a_cpu_machine_with_the_environment(tiny_checkpoint):
    env = {**os.environ, "SMOLVLM_MODEL": str(tiny_checkpoint), "SMOLVLM_MODELS": str(tiny_checkpoint),
           "SMOLVLM_DEVICE": "cpu", "SMOLVLM_PRELOAD": "1", "SMOLVLM_MAX_FRAMES": "8"}  # fmt: skip
    code = "import app; print(app.demo.__class__.__name__, app.demo.fns and 'ok')"
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["Blocks", "ok"]


APP_WITHOUT_INSTALL = """
import runpy, sys
# Drop the finders of an installed (editable) smolvlm-video: only this checkout's folders may serve imports.
sys.meta_path[:] = [finder for finder in sys.meta_path if "editable" not in repr(finder).lower()]
import smolvlm_video, demo
assert smolvlm_video.__file__.startswith(sys.argv[1]) and demo.__file__.startswith(sys.argv[1])
runpy.run_path("app.py", run_name="__main__")
"""


def test_app_py_serves_from_a_checkout_without_the_project_installed(tiny_checkpoint, png, tmp_path):
    checkout = tmp_path / "space"
    checkout.mkdir()
    root = Path(__file__).resolve().parent.parent
    for name in ("app.py", "smolvlm_video", "demo", "examples"):  # what a Space's repository holds
        copy = shutil.copytree if (root / name).is_dir() else shutil.copy
        copy(root / name, checkout / name)
    port = free_port()
    model = {"SMOLVLM_MODEL": str(tiny_checkpoint), "SMOLVLM_MODELS": str(tiny_checkpoint)}
    model["SMOLVLM_DEVICE"] = "cpu"
    env = {**os.environ, **model, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)}
    server = subprocess.Popen(
        [sys.executable, "-c", APP_WITHOUT_INSTALL, str(checkout)],
        cwd=checkout, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            try:
                client = Client(url, verbose=False)
                break
            except Exception:
                assert time.monotonic() < deadline, "app.py did not start within 120 s"
                time.sleep(1)
        settings = [str(tiny_checkpoint), 8, 1.0, 0, 0, 8, 0, ""]
        answer, _, seen = client.predict(handle_file(png), "What is this?", None, *settings, api_name="/ask")
        assert isinstance(answer, str) and seen.startswith("An image")
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_model_cache_loads_with_the_configured_attention_and_vision(config, monkeypatch):
    from smolvlm_video.demo.models import ModelCache

    calls: list[ModelOptions] = []
    monkeypatch.setattr(
        models_module, "load", lambda options: calls.append(options) or types.SimpleNamespace(compiled=False)
    )
    chosen = dataclasses.replace(config, attention="sdpa", vision="batched", dtype="float32")
    ModelCache().get(chosen.model_options("500M"))
    assert calls == [ModelOptions("500M", device="cpu", dtype="float32", attention="sdpa", vision="batched")]
    overrides = {"SMOLVLM_ATTENTION": "eager", "SMOLVLM_VISION": "per-chat"}
    assert DemoConfig.from_env(overrides).model_options().attention == "eager"


def test_the_api_example_in_the_docs(app_url, png, capsys):
    from doc_examples import ROOT, blocks

    (block,) = [b for b in blocks("python") if "from gradio_client import" in b.text]
    code = block.text.replace('"http://127.0.0.1:7860/"', repr(app_url))
    code = code.replace('"clip.mp4"', repr(str(ROOT / "examples" / "clips" / "testsrc2.mp4")))
    code = code.replace('"photo.jpg"', repr(str(png)))
    exec(compile(code, block.where, "exec"), {"__name__": "__docs__"})
    assert "frames of" in capsys.readouterr().out  # what the model saw, printed by the example


COLOURS = ["red", "green", "blue", "yellow", "magenta", "cyan", "white", "gray"]


def test_frames_of_requests_in_flight_are_never_pruned(config, media_dir, monkeypatch):
    """8 chats about 8 videos of different colours, 4 at a time, with only 2 finished frame sets kept."""
    from conftest import H264, ffmpeg
    from demo_server import served
    from smolvlm_video.demo import app as app_module
    from smolvlm_video.demo.handlers import Handlers

    from smolvlm_video.model.media import chat_media

    videos = {}
    for colour in COLOURS:
        videos[colour] = media_dir / f"solid-{colour}.mp4"
        if not videos[colour].exists():
            ffmpeg("-f", "lavfi", "-i", f"color=c={colour}:size=64x48:rate=5:d=2", *H264, str(videos[colour]))
    together, problems = threading.Barrier(4, timeout=60), []

    class Checked(Handlers):
        def _answer(self, name, chat, generation, heard=""):
            (video,) = chat_media(chat.messages)
            colour = video.frames.mean(axis=(0, 1, 2))
            for output in super()._answer(name, chat, generation, heard):
                for path, _ in output[1] if isinstance(output[1], list) else []:  # the gallery, when sent
                    if not Path(path).exists():
                        problems.append(f"pruned while in flight: {path}")
                    elif np.abs(np.asarray(Image.open(path)).mean(axis=(0, 1)) - colour).max() > 30:
                        problems.append(f"another request's frames: {path}")
                yield output

        def _stream_answer(self, name, chat, generation):
            together.wait()  # four requests hold their frames at once
            yield from super()._stream_answer(name, chat, generation)

    monkeypatch.setattr(app_module, "Handlers", Checked)
    small = dataclasses.replace(config, kept_requests=2, concurrency=4)
    with served(small) as url:
        client = Client(url, verbose=False, download_files=False)
        settings = [config.model, 8, 1.0, 0, 0, 8, 0, ""]
        jobs = [
            client.submit(handle_file(videos[c]), "Which colour?", *settings, api_name="/describe_video")
            for c in COLOURS
        ]
        galleries = [job.result()[1] for job in jobs]
    assert not problems
    folders = [{Path(item["image"]["path"]).parent for item in gallery} for gallery in galleries]
    assert all(len(f) == 1 for f in folders) and len(set.union(*folders)) == 8  # a folder each


def test_the_chat_answers_forged_special_tokens_and_adds_none(app_url, config, tiny_model, png, prompts):
    counts = []
    for text in (FORGED, PLAIN):
        client = Client(app_url, verbose=False)  # a session of its own: a new conversation
        settings = [config.model, 2, 1.0, 0, 0, 48, 0, text]  # the system prompt forges them too
        before = len(prompts)
        for message in ({"text": text, "files": [handle_file(png)]}, {"text": text, "files": []}):
            answer, _, _ = client.predict(
                message, json.dumps(forged_schema(text)), *settings, api_name="/chat"
            )
            assert json.loads(answer)["what"] in ("yes", "no")
        counts.append(special_counts(tiny_model.processor.tokenizer, prompts[before:]))
    assert counts[0] == counts[1] and counts[0]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e308])
@pytest.mark.parametrize("name", ["max_frames", "fps", "start", "end", "max_new_tokens", "temperature"])
def test_non_finite_and_huge_settings_are_refused_naming_the_setting(app_url, settings, name, value):
    import httpx

    asked = list(settings)
    asked[SETTINGS.index(name)] = value
    data = [{"text": "Hi", "files": []}, "", *asked, False]  # a raw call sends every input
    body = json.dumps({"data": data})  # NaN and Infinity as JavaScript writes them; gradio_client cannot
    headers = {"Content-Type": "application/json"}
    event = httpx.post(f"{app_url}gradio_api/call/chat", content=body, headers=headers, timeout=30).json()
    reply = httpx.get(f"{app_url}gradio_api/call/chat/{event['event_id']}", timeout=60).text
    assert "event: error" in reply and name in reply, reply


def test_a_video_over_the_pixel_budget_is_refused_with_a_message(client, settings, media_dir, png):
    over = media_dir / "over.avi"  # 36 megapixels a frame in 0.2 MB, under the app's upload limit
    ffmpeg("-f", "lavfi", "-i", "color=s=9000x4000:r=1:d=1", "-c:v", "mjpeg", "-q:v", "31", str(over))
    with pytest.raises(Exception, match=r"9000x4000.*pixels"):
        client.predict(handle_file(over), "Describe it.", *settings, api_name="/describe_video")
    assert client.predict(handle_file(png), "And this?", None, *settings, api_name="/ask")[0]


def test_frame_labels_are_never_repeated():
    from smolvlm_video.demo.frames import frame_labels

    assert frame_labels([0, 1, 2]) == ["00:00", "00:01", "00:02"]  # as the model's markers write them
    assert frame_labels([0, 0.5, 1.0, 2.96]) == ["00:00.0", "00:00.5", "00:01.0", "00:02.9"]
    assert frame_labels([0.2, 0.29, 0.33]) == ["00:00.20", "00:00.29", "00:00.33"]


def test_an_image_whatever_its_name_is_shown_as_itself(tmp_path):
    from smolvlm_video.demo.chat import media_shown

    photo = Image.new("RGB", (64, 48))  # read as an image by its content, though named .mp4
    assert media_shown([str(tmp_path / "photo.mp4")], [photo], tmp_path) == [
        {"path": str(tmp_path / "photo.mp4")}
    ]


def test_a_new_model_size_is_one_record_in_the_registry(monkeypatch):
    from click.testing import CliRunner
    from smolvlm_video.cli.main import cli
    from smolvlm_video.demo.zerogpu import request_seconds

    from smolvlm_video.model import registry

    spec = registry.ModelSpec("9B", "HuggingFaceTB/SmolVLM3-9B", 448, 100, 32768, 1.0, 2.0)
    monkeypatch.setitem(registry.MODELS, "9B", spec)
    listed = json.loads(CliRunner().invoke(cli, ["info", "--json"]).output)["models"]
    assert {**listed[-1], "name": "9B"} == dataclasses.asdict(spec)
    assert "9B" in DemoConfig.from_env({}).models and "9B" in DemoConfig().models
    # 5 s to set up, 10 frames and 20 tokens at its own costs, times the margin of 1.5
    assert request_seconds("9B", 10, 20, 1000) == request_seconds(spec.hub_id, 10, 20, 1000) == 83
    assert request_seconds("/models/unknown", 10, 20, 1000) == 83  # the dearest known model's costs
