"""A real browser: Debian's chromium, driven by Playwright, against `smolvlm-video demo` and embed.html.

Each test saves screenshots of what a person sees: to $SMOLVLM_SCREENSHOTS if set, else the test's folder.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    # A synthetic camera, allowed without asking: what the Live tab and the camera inputs see.
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EMBED_PAGE = EXAMPLES / "embed.html"
THREE_SHOTS = EXAMPLES / "clips" / "three-shots.mp4"  # shots start at 0, 3 and 7 s
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
            permissions=["camera", "microphone"],
        )
        yield context
        context.close()


@pytest.fixture
def screenshots(tmp_path) -> Path:
    """Where screenshots go: $SMOLVLM_SCREENSHOTS if set (to look at them), else the test's folder."""
    folder = Path(os.environ.get("SMOLVLM_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def opened(browser, url: str, tab: str | None = None):
    page = browser.new_page()
    page.goto(url)
    page.get_by_placeholder(QUESTION_BOX).wait_for(timeout=60_000)
    if tab:
        page.get_by_role("tab", name=tab).click()
    return page


def test_upload_a_video_ask_and_see_frames_then_answer(served, browser, clip, screenshots):
    page = opened(browser, served)
    page.screenshot(path=screenshots / "chat-first.png", full_page=True)
    assert not page.get_by_text("What the model saw").is_visible()  # no empty frames box before a question
    page.locator("input[type=file]").first.set_input_files(str(clip))
    page.get_by_placeholder(QUESTION_BOX).fill("What happens in this video?")
    page.keyboard.press("Enter")
    frames = page.locator("img[src*='smolvlm-frames']")
    frames.first.wait_for(timeout=60_000)
    assert frames.count() == 3  # the 3-second clip at 1 fps
    assert page.get_by_text("What the model saw").is_visible()
    assert page.get_by_text("3 frames of 64x48 from 00:00 to 00:03").is_visible()
    answer = page.locator("[data-testid='bot']").first
    answer.wait_for(timeout=60_000)
    page.wait_for_function(
        "el => el.innerText.trim().length > 0", arg=answer.element_handle(), timeout=60_000
    )
    page.screenshot(path=screenshots / "chat-answer.png", full_page=True)


def test_analyze_the_three_shots_then_play_the_second(served, browser, screenshots):
    page = opened(browser, served, "Analyze a video")
    page.screenshot(path=screenshots / "analyze-first.png", full_page=True)
    page.locator("#analyze-video input[type=file]").set_input_files(str(THREE_SHOTS))
    page.locator("#analyze-video video").wait_for(timeout=60_000)
    page.get_by_label("Shots").check()
    page.get_by_role("button", name="Analyze", exact=True).click()
    rows = page.locator("#analyze-timeline li.window")
    page.locator("a[href$='.srt']").first.wait_for(timeout=120_000)  # the downloads come last
    assert rows.count() == 3
    for row in rows.all():
        assert row.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
    rows.nth(1).click()
    position = page.locator("#analyze-video video").evaluate("video => video.currentTime")
    assert abs(position - 3.0) <= 0.5  # the second shot starts at 3 s
    page.screenshot(path=screenshots / "analyze-result.png", full_page=True)
    srt = page.request.get(page.locator("a[href$='.srt']").first.get_attribute("href")).text()
    assert srt.count(" --> ") == 3


def test_live_camera_answers_every_interval_without_a_backlog(served, browser, screenshots):
    interval = 2.0
    page = opened(browser, served, "Live camera")
    page.locator("#live-interval input[type=number]").fill(str(interval))  # the slider's number box
    page.locator("#live-interval input[type=number]").press("Enter")
    page.get_by_text("Click to Access Webcam").click()
    page.locator("#live-camera button", has_text="Record").click()  # starts streaming to the app
    entries, seen_at = page.locator("#live-log li.live-entry"), {}
    deadline = time.monotonic() + 60
    while len(seen_at) < 4 and time.monotonic() < deadline:
        for arrived, seconds in entries.evaluate_all(
            "items => items.map(li => [li.dataset.arrived, parseFloat(li.dataset.seconds)])"
        ):
            seen_at.setdefault(arrived, (time.time(), seconds))
        time.sleep(0.1)
    page.screenshot(path=screenshots / "live.png", full_page=True)
    assert len(seen_at) >= 2, "fewer than two answers in 60 s"
    arrivals = sorted(float(arrived) for arrived in seen_at)
    assert all(b - a >= interval - 0.05 for a, b in itertools.pairwise(arrivals))
    for arrived, (seen, seconds) in seen_at.items():
        # Each answer is about a frame that arrived when it was due, shown as soon as it was answered.
        assert seen - float(arrived) <= seconds + interval, "an answer showed later than one interval"
    assert re.fullmatch(r"\d\d:\d\d:\d\d", entries.first.locator(".at").inner_text())


def test_every_tab_at_400_px_wide(served, browser, screenshots):
    page = opened(browser, served)
    page.set_viewport_size({"width": 400, "height": 900})
    send = page.locator("button.submit-button, button[aria-label='Submit']").first
    for element in (page.get_by_placeholder(QUESTION_BOX), send):
        box = element.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 400, f"{box} lies outside 400 px"
    assert page.evaluate("document.documentElement.scrollWidth") <= 400  # nothing to scroll sideways
    page.screenshot(path=screenshots / "chat-400px.png", full_page=True)
    for tab in ("Analyze a video", "Live camera", "Describe a video", "Ask"):
        if not page.get_by_role("tab", name=tab).is_visible():  # the tabs that do not fit are in a menu
            page.get_by_role("button", name="More tabs").click()
            page.locator(".overflow-dropdown button", has_text=tab).click()
        else:
            page.get_by_role("tab", name=tab).click()
        name = tab.lower().replace(" ", "-")
        page.screenshot(path=screenshots / f"{name}-400px.png", full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 400, f"{tab} scrolls sideways"


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
