"""The page's tabs: each one's controls, and the events that wire them to a handler (`handlers.Handlers`).

Every tab but Live is a named API endpoint: /chat, /analyze, /describe_video and /ask, for gradio_client
and MCP clients. `settings` are the accordion's controls by name, passed to each handler after its own
inputs; `settings.endpoint` finds each event's inputs by the names of its handler's parameters.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from smolvlm_video.batch.clips import DEFAULT_PROMPT

from .analysis import PLAYER_ID, SPLITS, TIMELINE_CSS, TIMELINE_ID, TIMELINE_JS
from .config import DemoConfig
from .handlers import Handlers
from .live import (
    CAMERA_STATUS_CSS,
    CAMERA_STATUS_ID,
    CAMERA_STATUS_JS,
    DEFAULT_INTERVAL,
    FRAME_SECONDS,
    LIVE_CSS,
    LIVE_MAX_NEW_TOKENS,
    LiveLog,
    camera_status_html,
    log_html,
)
from .settings import Controls, endpoint

EXAMPLE_QUESTIONS = [  # (label, question, file under examples/)
    (
        "Test card (image)",
        "What is shown in this image? Describe the colours and shapes.",
        "images/testcard.png",
    ),
    ("Test pattern (video)", "What happens in this video?", "clips/testsrc2.mp4"),
    ("Mandelbrot zoom (video)", "Describe how the picture changes over time.", "clips/mandelbrot.mp4"),
]
EXAMPLE_ANALYSIS = ("Three shots (video)", "clips/three-shots.mp4", "scenes")  # label, file, split
EXAMPLE_SCHEMA = "schemas/scene.json"


def schema_box(effect: str) -> gr.Code:
    """A JSON schema's box: its label short enough to stay clear of the box's icons on a phone, and what the
    schema does said beneath."""
    box = gr.Code(label="JSON schema (optional)", language="json")
    gr.Markdown(effect, elem_classes=["schema-effect"])
    return box


def chat_examples(config: DemoConfig) -> list[dict[str, Any]]:
    """The examples the empty chat offers: a click puts the question and its file in the input."""
    return [
        {"text": question, "files": [str(config.examples_dir / name)], "display_text": label}
        for label, question, name in EXAMPLE_QUESTIONS
        if (config.examples_dir / name).exists()  # a wheel ships no examples
    ]


def analyze_tab(handlers: Handlers, config: DemoConfig, settings: Controls) -> None:
    """A whole video, window by window or shot by shot, into a clickable timeline and caption's record."""
    with gr.Row():
        video = gr.Video(label="Video", sources=["upload", "webcam"], elem_id=PLAYER_ID)
        with gr.Column():
            split = gr.Radio(SPLITS, value="fixed", label="Split the video into")
            prompt = gr.Textbox(DEFAULT_PROMPT, label="Prompt for each window", lines=2)
            schema = schema_box("Each window's answer is JSON that follows it.")
            with gr.Row():
                button = gr.Button("Analyze", variant="primary")
                stop = gr.Button("Stop", variant="stop")
    _examples_for_analysis(config, video, split, schema)
    timeline = gr.HTML(
        "", label="Timeline", elem_id=TIMELINE_ID, js_on_load=TIMELINE_JS, css_template=TIMELINE_CSS
    )
    with gr.Column(visible=False) as results:  # shown with the first result: no empty boxes before
        downloads = gr.File(label="Record and subtitles", file_count="multiple", interactive=False)
        with gr.Accordion("Record (as caption writes it)", open=False):
            # JSON text, not gr.JSON: gradio_client would take the record's "path" for a file to download.
            record = gr.Code(
                label="Record", language="json", interactive=False, max_lines=24, show_label=False
            )
    downloads.change(lambda: gr.Column(visible=True), None, results, api_visibility="private", queue=False)
    controls = {"video": video, "prompt": prompt, "split": split, "json_schema": schema}
    analyze, inputs = endpoint(handlers.analyze, controls, settings)
    event = button.click(
        analyze,
        inputs,
        [timeline, record, downloads],
        api_name="analyze",
        show_progress_on=[timeline],
    )
    stop.click(None, cancels=[event], api_visibility="private")


def _examples_for_analysis(config: DemoConfig, video: gr.Video, split: gr.Radio, schema: gr.Code) -> None:
    label, name, split_value = EXAMPLE_ANALYSIS
    if (config.examples_dir / name).exists():
        gr.Examples(
            [[str(config.examples_dir / name), split_value]],
            inputs=[video, split],
            example_labels=[label],
            label="Example video",
        )
    schema_file = config.examples_dir / EXAMPLE_SCHEMA
    if schema_file.exists():
        text = schema_file.read_text(encoding="utf-8")
        example = gr.Button(f"Use the example schema ({schema_file.name})", size="sm")
        example.click(lambda: text, None, schema, api_visibility="private", queue=False)


def live_tab(handlers: Handlers, settings: Controls) -> None:
    """The camera, answered every few seconds into a running log; not an API endpoint."""
    gr.Markdown(
        "Turn the camera on: every few seconds the model describes the latest frame, or answers your "
        f"standing question. Frames that arrive while it is busy are dropped. Answers are kept to "
        f"{LIVE_MAX_NEW_TOKENS} tokens."
    )
    with gr.Row():
        camera = gr.Image(
            label="Camera", sources=["webcam"], streaming=True, type="numpy", elem_id="live-camera"
        )
        with gr.Column():
            question = gr.Textbox(
                "", label="Standing question", placeholder="Is anyone at the door? (empty: describe the view)"
            )
            interval = gr.Slider(1, 60, value=DEFAULT_INTERVAL, step=0.5, label="Answer every (seconds)")
            interval.elem_id = "live-interval"
    gr.HTML(
        camera_status_html(),
        elem_id=CAMERA_STATUS_ID,
        js_on_load=CAMERA_STATUS_JS,
        css_template=CAMERA_STATUS_CSS,
        show_label=False,
    )
    log = gr.State(LiveLog())
    shown = gr.HTML(log_html(LiveLog()), label="Answers", elem_id="live-log", css_template=LIVE_CSS)
    controls = {"frame": camera, "question": question, "interval": interval, "log": log}
    live, inputs = endpoint(handlers.live, controls, settings)
    camera.stream(
        live,
        inputs,
        [shown, log],
        stream_every=FRAME_SECONDS,
        api_visibility="private",
        show_progress="hidden",
    )


def describe_tab(handlers: Handlers, settings: Controls, seen: list) -> None:
    with gr.Row():
        video = gr.Video(label="Video", sources=["upload", "webcam"])
        with gr.Column():
            prompt = gr.Textbox(DEFAULT_PROMPT, label="Prompt")
            button = gr.Button("Describe", variant="primary")
            stop = gr.Button("Stop", variant="stop")
    answer = gr.Textbox(label="Description", lines=8, interactive=False)
    describe, inputs = endpoint(handlers.describe_video, {"video": video, "prompt": prompt}, settings)
    event = button.click(describe, inputs, [answer, *seen], api_name="describe_video")
    stop.click(None, cancels=[event], api_visibility="private")


def ask_tab(handlers: Handlers, settings: Controls, seen: list) -> None:
    with gr.Row():
        with gr.Column():
            media = gr.File(label="Image or video", file_types=["image", "video"], file_count="single")
            with gr.Accordion("Or use the camera", open=False):
                snapshot = gr.Image(label="Snapshot", sources=["webcam"], type="filepath")
                recording = gr.Video(label="Short clip", sources=["webcam"])
        with gr.Column():
            question = gr.Textbox(label="Question", placeholder="What is happening here?")
            schema = schema_box("The answer is JSON that follows it.")
            button = gr.Button("Ask", variant="primary")
            stop = gr.Button("Stop", variant="stop")
    answer = gr.Textbox(label="Answer", lines=8, interactive=False)
    for camera in (snapshot, recording):  # a snapshot or a clip becomes the file asked about
        camera.change(_use_file, camera, media, api_visibility="private", queue=False)
    ask, inputs = endpoint(
        handlers.ask, {"media": media, "question": question, "json_schema": schema}, settings
    )
    event = gr.on([button.click, question.submit], ask, inputs, [answer, *seen], api_name="ask")
    stop.click(None, cancels=[event], api_visibility="private")


def _use_file(path: str | None) -> Any:
    return path if path else gr.skip()
