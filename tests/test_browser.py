"""A real browser: Debian's chromium, driven by Playwright, against `smolvlm-video demo` and embed.html."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
EMBED_PAGE = Path(__file__).resolve().parent.parent / "examples" / "embed.html"
QUESTION_BOX = "Upload an image or a video and ask about it"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="chromium is not installed (apt-get install chromium)"
    ),
]
playwright_api = pytest.importorskip("playwright.sync_api")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(tiny_checkpoint, tmp_path_factory):
    """`smolvlm-video demo` in its own process, as a user starts it."""
    port = free_port()
    log = tmp_path_factory.mktemp("demo-log") / "demo.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SMOLVLM_MAX_FRAMES": "8", "SMOLVLM_MAX_NEW_TOKENS": "24"}
    command = [sys.executable, "-m", "smolvlm_video", "demo", "--port", str(port)]
    command += ["--model", str(tiny_checkpoint), "--device", "cpu"]
    with log.open("wb") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for(url, server, log)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_for(url: str, server: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"smolvlm-video demo exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"smolvlm-video demo did not answer within {seconds} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def browser(tmp_path):
    with playwright_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),  # an empty user data dir
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 1000},
        )
        yield context
        context.close()


@pytest.fixture
def screenshots(tmp_path) -> Path:
    """Where screenshots go: $SMOLVLM_SCREENSHOTS if set (to look at them), else the test's folder."""
    folder = Path(os.environ.get("SMOLVLM_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_upload_a_video_ask_and_see_frames_then_answer(served, browser, clip, screenshots):
    page = browser.new_page()
    page.goto(served)
    page.get_by_placeholder(QUESTION_BOX).wait_for(timeout=60_000)
    page.locator("input[type=file]").first.set_input_files(str(clip))
    page.get_by_placeholder(QUESTION_BOX).fill("What happens in this video?")
    page.keyboard.press("Enter")
    frames = page.locator("img[src*='smolvlm-frames']")
    frames.first.wait_for(timeout=60_000)
    assert frames.count() == 3  # the 3-second clip at 1 fps
    assert page.get_by_text("3 frames of 64x48 from 00:00 to 00:03").is_visible()
    answer = page.locator("[data-testid='bot']").first
    answer.wait_for(timeout=60_000)
    page.wait_for_function(
        "el => el.innerText.trim().length > 0", arg=answer.element_handle(), timeout=60_000
    )
    page.screenshot(path=screenshots / "demo-chat.png", full_page=True)


def test_embed_page_shows_the_app(served, browser, screenshots):
    page = browser.new_page()
    page.goto(f"{EMBED_PAGE.as_uri()}?app={served}")
    app = page.frame_locator("iframe#demo")
    try:
        app.get_by_placeholder(QUESTION_BOX).wait_for(timeout=60_000)
    finally:
        page.screenshot(path=screenshots / "embed.png", full_page=True)
    assert app.get_by_text("SmolVLM2 video chat").first.is_visible()
    page.screenshot(path=screenshots / "embed.png", full_page=True)
