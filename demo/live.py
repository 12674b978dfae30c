"""The Live tab: the browser's camera, described every few seconds, as a running timestamped log.

The camera streams frames to the app about twice a second. A frame becomes a question only when the
chosen interval has passed since the last answer began; every other frame is dropped at once. The
browser sends no frame while the one before is still being handled, so frames that arrive while the
model is busy are dropped too, never queued: each answer is about a frame at most one interval old.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass

LIVE_PROMPT = "Describe what you see in one sentence."
LIVE_MAX_NEW_TOKENS = 64  # a short answer, so the log keeps up with the camera
FRAME_SECONDS = 0.5  # how often the browser sends a frame
DEFAULT_INTERVAL = 5.0  # seconds between answers, unless the person chooses another
KEPT_ENTRIES = 50  # the log shows the newest this many


@dataclass(frozen=True)
class LiveEntry:
    """One answer: when its frame arrived, how long the answer took, what the model said."""

    at: str  # the frame's arrival, HH:MM:SS on the app's clock
    arrived: float  # the same, as time.time()
    seconds: float  # from the frame's arrival to the whole answer
    question: str
    answer: str


@dataclass(frozen=True)
class LiveLog:
    """A camera session's answers, newest first, and when the last answer began (time.monotonic())."""

    entries: tuple[LiveEntry, ...] = ()
    last_started: float = float("-inf")

    def due(self, interval: float, now: float) -> bool:
        """Whether a frame arriving `now` should be answered: the interval has passed since the last began."""
        return now - self.last_started >= interval

    def add(self, entry: LiveEntry, started: float) -> LiveLog:
        return LiveLog((entry, *self.entries)[:KEPT_ENTRIES], started)


def arrival() -> tuple[str, float]:
    """The arrival stamp of a frame that arrives now: (HH:MM:SS, time.time())."""
    now = time.time()
    return time.strftime("%H:%M:%S", time.localtime(now)), now


def log_html(log: LiveLog) -> str:
    """The log as HTML, newest first: time, latency, the question if one was set, the answer."""
    if not log.entries:
        return '<p class="live-empty">No answer yet: they appear here once the camera records.</p>'
    items = [
        f'<li class="live-entry" data-arrived="{e.arrived:.3f}" data-seconds="{e.seconds:.3f}">'
        f'<span class="at">{e.at}</span> <span class="latency">({e.seconds:.1f} s)</span> '
        + (f'<span class="question">{html.escape(e.question)}</span> ' if e.question else "")
        + f'<span class="answer">{html.escape(e.answer)}</span></li>'
        for e in log.entries
    ]
    return f'<ol class="live-log">{"".join(items)}</ol>'


LIVE_CSS = """
.live-log { list-style: none; margin: 0; padding: 0; }
.live-entry { padding: 0.35em 0; border-bottom: 1px solid var(--border-color-primary);
  overflow-wrap: anywhere; }
.live-entry .at { font-family: var(--font-mono); }
.live-entry .latency { color: var(--body-text-color-subdued); }
.live-entry .question { font-style: italic; }
"""


CAMERA_STATUS_ID = "live-status"
WAITING = "Waiting for the camera: click the camera below and allow it."
# The camera's state, in words, from the browser's own events: gr.Image asks for the camera, and says
# nothing when the browser refuses it. The page watches getUserMedia's outcome and the stream's tracks.
CAMERA_STATUS_JS = """
const status = element.querySelector("p");
const say = (kind, text) => { status.dataset.state = kind; status.textContent = text; };
let newest = null;  // the time of the newest answer seen: a new one means the camera is being answered
setInterval(() => {
  const at = document.querySelector("#live-log li.live-entry .at");
  if (!at || at.textContent === newest || status.dataset.state === "stopped") return;
  newest = at.textContent;
  say("answering", `Answering every few seconds; the newest answer (${newest}) is on top.`);
}, 1000);
const media = navigator.mediaDevices;
if (!media || !media.getUserMedia) {
  say("unavailable", "This page cannot use a camera: open the app over https (or on localhost).");
} else if (!media.__smolvlmWatched) {
  media.__smolvlmWatched = true;
  const ask = media.getUserMedia.bind(media);
  media.getUserMedia = async (constraints) => {
    if (!constraints || !constraints.video) return ask(constraints);
    try {
      const stream = await ask(constraints);
      say("on", "Camera on: press Record to start answering; each answer appears below.");
      const stopped = () => say("stopped", "The camera stopped: click it to start again.");
      stream.getVideoTracks().forEach((track) => track.addEventListener("ended", stopped));
      return stream;
    } catch (error) {
      const why = {
        NotAllowedError: "The camera is blocked. Allow it for this site (the camera icon in the address " +
          "bar) and click the camera again. A page that embeds the app must allow it: " +
          "<iframe allow=\\"camera\\">.",
        NotFoundError: "No camera was found: connect one and click the camera again.",
        NotReadableError: "The camera is in use by another program: close it and click the camera again.",
      }[error.name] || `The camera could not start (${error.name}): ${error.message}`;
      say("refused", why);
      throw error;
    }
  };
}
"""
CAMERA_STATUS_CSS = """
p.camera-status { margin: 0; padding: 0.5em 0.75em; border-radius: var(--radius-md);
  border: 1px solid var(--border-color-primary); }
p.camera-status[data-state="refused"], p.camera-status[data-state="unavailable"] {
  border: 2px solid var(--error-border-color); font-weight: 600; }
"""


def camera_status_html() -> str:
    return f'<p class="camera-status" role="status" aria-live="polite" data-state="waiting">{WAITING}</p>'
