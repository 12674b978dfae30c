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
from conftest import ffmpeg

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


class Served(str):
    """The app's URL, and the process that serves it."""

    def __new__(cls, url: str, pid: int) -> Served:
        served = super().__new__(cls, url)
        served.pid = pid
        return served


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
        yield Served(url, server.pid)
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


def _chat_input(page):
    return page.locator("#chat-input textarea").first


def _send(page, question: str, *files: Path) -> None:
    """Empty the chat's input of files, attach `files`, type `question`, press Enter."""
    while page.locator("#chat-input button[aria-label='Remove file']").count():
        page.locator("#chat-input button[aria-label='Remove file']").first.click()
    if files:
        page.locator("#chat-input input[type=file]").first.set_input_files([str(f) for f in files])
    _chat_input(page).fill(question)
    _chat_input(page).press("Enter")


def _wait_answered(page) -> None:
    """Until the question sent is answered: the input emptied and ready again (an error keeps it)."""
    page.wait_for_function(
        "() => { const box = document.querySelector('#chat-input textarea');"
        " return box.value === '' && !box.disabled; }",
        timeout=60_000,
    )


def _demo_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@pytest.fixture
def bad_inputs(tmp_path) -> list[tuple[str, list[Path], str]]:
    """(what, files, question): what the chat must refuse and come back from."""
    text = tmp_path / "notes.mp4"
    text.write_text("not a video, only text\n" * 20)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(THREE_SHOTS.read_bytes()[:3000])
    too_long = "Describe every detail of this picture, again and again. " * 4000  # 228,000 characters
    return [
        ("a text file renamed .mp4", [text], "What is it?"),
        ("an empty .mp4", [empty], "What is it?"),
        ("a truncated .mp4", [truncated], "What is it?"),
        ("an over-long question", [], too_long),
    ]


def test_chat_comes_back_ready_after_every_error(served, browser, clip, bad_inputs, screenshots):
    page = opened(browser, served)
    for number, (what, files, question) in enumerate(bad_inputs):
        _send(page, question, *files)
        toast = page.locator(".toast-body")
        toast.first.wait_for(timeout=60_000)
        page.wait_for_function(
            "() => !document.querySelector('#chat-input textarea').disabled", timeout=30_000
        )
        assert toast.count() == 1, f"{what}: {toast.all_inner_texts()}"  # said once
        assert _chat_input(page).input_value() == question, what  # kept, to edit
        assert page.locator("#chat-input button[aria-label='Submit']").is_visible(), what
        badges = page.locator("[data-testid='status-tracker'] span.error")
        assert not any(badge.is_visible() for badge in badges.all()), what  # no badge over the chat
        page.screenshot(path=screenshots / f"chat-error-{number}.png", full_page=True)
        page.locator(".toast-close").first.click()
        _send(page, "What happens in this video?", clip)
        _wait_answered(page)
        assert page.locator(".toast-body").count() == 0, what
        assert page.locator("#chat .bot").last.inner_text().strip(), what


def _long_answers(page) -> None:
    """The settings asking for long answers: 2048 new tokens."""
    page.get_by_text("Settings", exact=True).click()
    number = page.locator("input[type=number][aria-label*='Max new tokens']")
    number.fill("2048")
    number.press("Enter")
    page.get_by_text("Settings", exact=True).click()


def test_stop_ends_a_long_answer_within_a_second(served, browser, clip, screenshots):
    page = opened(browser, served)
    _long_answers(page)
    _send(page, "Describe it in detail.", clip)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#chat .bot')].some(b => b.innerText.trim().length > 20)",
        timeout=60_000,
    )
    page.locator("#chat-input button[aria-label='Stop']").click()
    clicked = last_change = time.monotonic()
    settled = page.locator("#chat .bot").last.inner_text()
    while time.monotonic() - clicked < 2.0:  # when the answer last grew, watched for 2 s
        text = page.locator("#chat .bot").last.inner_text()
        if text != settled:
            settled, last_change = text, time.monotonic()
        time.sleep(0.05)
    assert last_change - clicked < 1.0, "the answer went on growing a second after Stop"
    page.wait_for_function("() => !document.querySelector('#chat-input textarea').disabled", timeout=5_000)
    pid = served.pid
    before = _demo_cpu_seconds(pid)
    time.sleep(2.0)
    assert _demo_cpu_seconds(pid) - before < 0.5, "the app still works after Stop: generation goes on"
    assert time.sleep(1.0) is None and page.locator("#chat .bot").last.inner_text() == settled
    page.screenshot(path=screenshots / "chat-stopped.png", full_page=True)
    _send(page, "And in one word?")  # a follow-up after a stop is answered
    page.locator("#chat-input button[aria-label='Stop']").wait_for(timeout=30_000)
    page.locator("#chat-input button[aria-label='Stop']").click()


def test_clear_during_an_answer_empties_the_chat_and_the_frames(served, browser, clip, screenshots):
    page = opened(browser, served)
    _long_answers(page)
    _send(page, "Describe it in detail.", clip)
    page.locator("img[src*='smolvlm-frames']").first.wait_for(timeout=60_000)
    page.locator("#chat .bot").first.wait_for(timeout=60_000)
    page.locator("#chat-clear").click()
    page.wait_for_function("() => !document.querySelector('#chat-input textarea').disabled", timeout=5_000)
    time.sleep(1.0)
    assert page.locator("#chat .message").count() == 0
    assert page.locator("img[src*='smolvlm-frames']").count() == 0
    assert not page.get_by_text("What the model saw").is_visible()
    page.screenshot(path=screenshots / "chat-cleared.png", full_page=True)


def test_a_video_the_browser_cannot_play_shows_its_first_frame(served, browser, tmp_path, screenshots):
    avi = tmp_path / "old.avi"  # MPEG-4 Part 2 in AVI: Chromium plays neither
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=3", "-c:v", "mpeg4", str(avi))
    page = opened(browser, served)
    _send(page, "What is it?", avi)
    _wait_answered(page)
    poster = page.locator("#chat img[src*='poster']")
    assert poster.count() == 1 and poster.evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.locator("#chat video").count() == 0  # no blank player reading 0:00 / NaN:NaN
    page.screenshot(path=screenshots / "chat-poster.png", full_page=True)


def test_a_lone_image_is_seen_whole(served, browser):
    page = opened(browser, served)
    _send(page, "What is it?", EXAMPLES / "images" / "testcard.png")
    frame = page.locator("#seen-frames img").first
    frame.wait_for(timeout=60_000)
    box = frame.bounding_box()
    assert box and box["width"] <= 200 and box["height"] <= 200, box  # a thumbnail, not a cut strip
    assert frame.evaluate("img => getComputedStyle(img).objectFit") == "contain"
    _wait_answered(page)


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
    rows.nth(2).focus()
    page.keyboard.press("Space")  # the keyboard's way to press a row, as a button's
    position = page.locator("#analyze-video video").evaluate("video => video.currentTime")
    assert abs(position - 7.0) <= 0.5  # the third shot starts at 7 s
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
    status = page.locator("#live-status").inner_text()  # what the app said it was doing, if it stalled
    assert len(seen_at) >= 2, f"fewer than two answers in 60 s; the status read {status!r}"
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


def _record_live(frame_owner) -> None:
    frame_owner.get_by_role("tab", name="Live camera").click()
    frame_owner.get_by_text("Click to Access Webcam").click()


def test_the_embed_page_grants_the_camera_to_live(served, browser, screenshots):
    page = browser.new_page()
    page.goto(f"{EMBED_PAGE.as_uri()}?app={served}")
    app = page.frame_locator("iframe#demo")
    app.get_by_placeholder(QUESTION_BOX).wait_for(timeout=60_000)
    _record_live(app)
    app.locator("#live-camera button", has_text="Record").click()
    app.locator("#live-log li.live-entry").first.wait_for(timeout=60_000)  # an answer about a camera frame
    app.locator("#live-status p[data-state='answering']").wait_for(timeout=5_000)
    page.screenshot(path=screenshots / "embed-live.png", full_page=True)


def test_a_refused_camera_says_what_to_do(served, tmp_path, screenshots):
    with playwright_api.sync_playwright() as playwright:
        flags = [f for f in CHROMIUM_FLAGS if "fake-ui" not in f] + ["--deny-permission-prompts"]
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        page = browser.new_page()
        page.goto(served)
        page.get_by_placeholder(QUESTION_BOX).wait_for(timeout=60_000)
        _record_live(page)
        refused = page.locator("#live-status p[data-state='refused']")
        refused.wait_for(timeout=30_000)
        assert "blocked" in refused.inner_text() and "allow" in refused.inner_text().lower()
        page.screenshot(path=screenshots / "live-refused.png", full_page=True)
        browser.close()


PAGE_CHECKS = Path(__file__).resolve().parent / "page_checks"
CONTRAST_JS = (PAGE_CHECKS / "contrast.js").read_text()  # [{kind, text, ratio, color}] of what is visible
LABELS_JS = (PAGE_CHECKS / "labels.js").read_text()  # labels cut short or under an icon button
TABS = ("Chat", "Analyze a video", "Live camera", "Describe a video", "Ask")


def _each_tab(page):
    """Open each tab in turn (from the overflow menu where it does not fit), yielding its name."""
    for tab in TABS:
        if page.get_by_role("tab", name=tab).is_visible():
            page.get_by_role("tab", name=tab).click()
        else:
            page.get_by_role("button", name="More tabs").click()
            page.locator(".overflow-dropdown button", has_text=tab).click()
        yield tab


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_text_meets_wcag_aa_contrast(served, browser, theme):
    page = browser.new_page()
    page.emulate_media(color_scheme=theme)
    page.goto(f"{served}?__theme={theme}")
    page.get_by_placeholder(QUESTION_BOX).wait_for(timeout=60_000)
    page.get_by_text("Settings", exact=True).click()  # its labels, hints and placeholders too
    low = []
    for tab in _each_tab(page):
        measured = page.evaluate(CONTRAST_JS)
        assert {m["kind"] for m in measured} == {"label", "hint", "placeholder"}, tab  # the check sees them
        low += [(tab, m) for m in measured if m["ratio"] < 4.5]
    assert not low, low


def test_a_phone_sees_the_examples_and_every_label(served, browser, screenshots):
    page = browser.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(served)
    page.get_by_placeholder(QUESTION_BOX).wait_for(timeout=60_000)
    examples = page.locator("#chat .example").all()
    assert len(examples) == 3
    for example in examples:  # without scrolling
        box = example.bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= 844, box
    page.get_by_text("Settings", exact=True).click()
    for tab in _each_tab(page):
        assert page.evaluate(LABELS_JS) == [], tab


def test_screenshots_for_the_docs(served, browser, screenshots):
    """docs/demo.md's pictures; remade with SMOLVLM_SCREENSHOTS=docs/images pytest tests/test_browser.py
    -k screenshots_for_the_docs."""
    for theme, (name, size) in itertools.product(
        ("light", "dark"), (("desktop", (1280, 900)), ("phone", (390, 844)))
    ):
        page = browser.new_page()
        page.emulate_media(color_scheme=theme)
        page.set_viewport_size({"width": size[0], "height": size[1]})
        page.goto(f"{served}?__theme={theme}")
        page.get_by_placeholder(QUESTION_BOX).wait_for(timeout=60_000)
        _send(page, "What happens in this video?", EXAMPLES / "clips" / "testsrc2.mp4")
        _wait_answered(page)
        page.screenshot(path=screenshots / f"chat-{name}-{theme}.jpg", type="jpeg", quality=80)
        page.close()
    page = opened(browser, served, "Analyze a video")
    page.locator("#analyze-video input[type=file]").set_input_files(str(THREE_SHOTS))
    page.get_by_label("Shots").check()
    page.get_by_role("button", name="Analyze", exact=True).click()
    page.locator("a[href$='.srt']").first.wait_for(timeout=120_000)
    page.screenshot(path=screenshots / "analyze.jpg", type="jpeg", quality=80, full_page=True)
    page = opened(browser, served, "Live camera")
    page.get_by_text("Click to Access Webcam").click()
    page.locator("#live-camera button", has_text="Record").click()
    page.locator("#live-log li.live-entry").first.wait_for(timeout=60_000)
    page.screenshot(path=screenshots / "live.jpg", type="jpeg", quality=80, full_page=True)


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
