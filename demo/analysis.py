"""The Analyze tab: a video captioned window by window (or shot by shot) into `caption`'s record.

The work is the core's: a `CaptionJob` built from the tab's choices and the settings, run over one
planned clip by `caption_steps`. What this module adds is what a page shows: a timeline row per
window, with a thumbnail of its first frame, and the record and its subtitles as downloads. The
record names the uploaded file by its name alone, never by its path on the server.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from smolvlm_video.batch.captioning import CaptionJob, WindowAnswered, caption_steps
from smolvlm_video.batch.clips import DEFAULT_PROMPT
from smolvlm_video.batch.prefetch import PlannedClip
from smolvlm_video.batch.records import CaptionRecord, answer_text
from smolvlm_video.batch.subtitles import cues, to_srt, to_vtt
from smolvlm_video.errors import SmolVLMVideoError
from smolvlm_video.model.loading import LoadedModel
from smolvlm_video.model.prompts import clock
from smolvlm_video.model.schemas import JsonSchema, Question
from smolvlm_video.options import ModelOptions, Split

from .frames import thumbnail_uri
from .settings import Settings

SPLITS = [("Fixed windows (up to 3.5 minutes each)", "fixed"), ("Shots", "scenes")]
TIMELINE_ID = "analyze-timeline"
PLAYER_ID = "analyze-video"


def analysis_job(
    model: ModelOptions, prompt: str, split: Split, schema: JsonSchema | None, settings: Settings
) -> CaptionJob:
    """The job `smolvlm-video caption` runs for the same prompt, schema, split and settings.

    Raises OptionsError on impossible values.
    """
    sampling, generation = settings.options(split=split)
    return CaptionJob(
        model=model,
        questions={"caption": Question(prompt.strip() or DEFAULT_PROMPT, schema)},
        sampling=sampling,
        generation=generation,
        system=settings.system or None,
    )


@dataclass(frozen=True)
class TimelineRow:
    """One window of the timeline: its span, its answer, and a thumbnail of its first frame."""

    start: float
    end: float
    answer: Any  # text, or a schema's JSON value
    thumbnail: str  # a data: URI
    speech: str | None = None  # what was said during the window (None: not listened to)


def analysis_steps(
    model: LoadedModel, job: CaptionJob, clip: PlannedClip
) -> Iterator[TimelineRow | CaptionRecord]:
    """A row per window as it is answered, then the clip's record. Small and picklable: on ZeroGPU they
    cross from the GPU's process to the app's."""
    for step in caption_steps(model, job, [clip]):
        yield timeline_row(step) if isinstance(step, WindowAnswered) else step


def timeline_row(step: WindowAnswered) -> TimelineRow:
    caption = step.caption
    answer = next(iter(caption.answers.values()), caption.caption)
    thumbnail = thumbnail_uri(step.video.frames[0])
    return TimelineRow(caption.start, caption.end, answer, thumbnail, caption.speech_text)


def named_record(record: CaptionRecord, name: str) -> CaptionRecord:
    """The record with the uploaded file named by `name` alone, in its paths and its error message."""
    error = record.error
    if error is not None:
        error = {
            **error,
            "message": error["message"].replace(record.abs_path, name).replace(record.path, name),
        }
    return replace(record, path=name, abs_path=name, error=error)


def record_error(record: CaptionRecord) -> SmolVLMVideoError:
    """An error record's failure, to show the person."""
    assert record.error is not None
    return SmolVLMVideoError(record.error["message"])


def timeline_html(rows: Sequence[TimelineRow]) -> str:
    """The timeline as HTML: a row per window, which plays the video from its start when clicked."""
    if not rows:
        return ""
    items = []
    for row in sorted(rows, key=lambda r: r.start):
        answer = answer_text(row.answer)
        items.append(
            f'<li class="window" data-start="{row.start:.3f}" role="button" tabindex="0" '
            f'title="Play from {clock(row.start)}">'
            f'<img src="{row.thumbnail}" alt="Frame at {clock(row.start)}">'
            f'<span class="span">{clock(row.start)}–{clock(row.end)}</span>'
            f'<span class="answer">{html.escape(answer)}</span>{_said(row.speech)}</li>'
        )
    return f'<ol class="timeline">{"".join(items)}</ol>'


def _said(speech: str | None) -> str:
    """What was said during a window, under its answer; nothing where the video was not listened to."""
    if speech is None:
        return ""
    said = f"Said: \u201c{html.escape(speech)}\u201d" if speech else "Nothing is said."
    return f'<span class="speech">{said}</span>'


# Runs once in the page: a click (or Enter or Space, as on a button) on a row seeks the Analyze tab's player
# to the row's start.
TIMELINE_JS = f"""
const seek = (event) => {{
  const row = event.target.closest("li.window");
  if (!row || (event.type === "keydown" && event.key !== "Enter" && event.key !== " ")) return;
  event.preventDefault();  // Space scrolls the page otherwise
  const video = document.querySelector("#{PLAYER_ID} video");
  if (!video) return;
  video.currentTime = parseFloat(row.dataset.start);
  video.play().catch(() => {{}});
}};
element.addEventListener("click", seek);
element.addEventListener("keydown", seek);
"""

TIMELINE_CSS = """
.timeline { list-style: none; margin: 0; padding: 0; }
.timeline li.window { display: flex; flex-wrap: wrap; gap: 0.5em 0.75em; align-items: flex-start;
  padding: 0.5em; border-bottom: 1px solid var(--border-color-primary); cursor: pointer; }
.timeline li.window:hover, .timeline li.window:focus { background: var(--background-fill-secondary); }
.timeline img { width: 120px; height: auto; border-radius: 4px; flex: none; }
.timeline .speech { flex: 1 1 100%; font-style: italic; color: var(--body-text-color-subdued); }
.timeline .span { font-family: var(--font-mono); white-space: nowrap; flex: none; }
.timeline .answer { flex: 1 1 14em; min-width: 0; overflow-wrap: anywhere; white-space: pre-wrap; }
"""


def write_downloads(record: CaptionRecord, folder: Path) -> list[str]:
    """The record as JSON, and its subtitles as SRT and WebVTT, in `folder` named after the clip."""
    stem = Path(record.path).stem or "video"
    files = {
        f"{stem}.json": record.to_json(indent=2) + "\n",
        f"{stem}.srt": to_srt(cues(record)),
        f"{stem}.vtt": to_vtt(cues(record)),
    }
    paths = []
    for name, text in files.items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        paths.append(str(path))
    return paths
