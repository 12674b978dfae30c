"""Every path that puts a chat into the model gives transformers' own token ids, on the tiny checkpoint.

The reference is `model.generate(**processor(...))` on each chat alone, with the same frames, the
same text and greedy decoding of a fixed number of tokens. Our side is each real entry point:
`generate` and `stream`, a batch with either way of running the vision encoder, pixels made ahead,
the batch engine window by window, a prompt file, `caption` and `ask` on the command line, and the
demo's chat handler. What is compared is token ids (the prompt's and the generated ones), never
random-weight text alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import requires_ffmpeg
from PIL import Image
from reference import Recorder, Tokens, processor_inputs, reference_text, reference_tokens
from smolvlm_video.cli.main import cli

from smolvlm_video import GenerationOptions, SamplingOptions, sample_video, sample_windows
from smolvlm_video.batch.captioning import CaptionJob, read_questions
from smolvlm_video.batch.runs import Captioning, CaptionRun
from smolvlm_video.model.generate import generate, stream
from smolvlm_video.model.inputs import build_inputs
from smolvlm_video.model.loading import LoadedModel, load_model
from smolvlm_video.model.media import prepare_video
from smolvlm_video.model.prompts import Message, chat
from smolvlm_video.model.schemas import Question
from smolvlm_video.options import ModelOptions

pytestmark = [pytest.mark.slow, requires_ffmpeg]
EXACT = GenerationOptions(max_new_tokens=6, min_new_tokens=6)
EXAMPLE_CLIPS = Path(__file__).resolve().parent.parent / "examples" / "clips"


@pytest.fixture(scope="module")
def model(tiny_checkpoint: Path) -> LoadedModel:
    """float32 on every CPU, so that both sides do the very same arithmetic."""
    return load_model(str(tiny_checkpoint), device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def videos(make_video, model: LoadedModel) -> tuple[Any, Any]:
    options = SamplingOptions(max_frames=8).for_frame_side(model.frame_side)
    short = sample_video(make_video("parity-short.mp4", seconds=3), options)
    longer = sample_video(make_video("parity-long.mp4", seconds=6), options)
    assert short.frame_count != longer.frame_count
    return short, longer


@pytest.fixture(scope="module")
def image() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 255, (100, 150, 3), dtype=np.uint8))


@pytest.fixture
def record(model: LoadedModel, monkeypatch: pytest.MonkeyPatch):
    """record() -> a context in which every generate() of the tiny model's class is recorded."""
    return lambda: Recorder().watching(type(model.model), monkeypatch)


def prepared(model: LoadedModel, video: Any) -> Any:
    """The video with its pixels made ahead, as the decoding threads make them on CUDA (unpinned here)."""
    return prepare_video(model.processor, video, model.dtype, pin=False)


def chats_of(
    kind: str, model: LoadedModel, videos: tuple[Any, Any], image: Image.Image
) -> tuple[list[Message], list[Message]]:
    """(ours, the reference's): the same chat, but ours may carry pixels made ahead of the same frames."""
    if kind in ("video", "prepared video"):
        made = prepared(model, videos[0]) if kind == "prepared video" else videos[0]
        return chat("Describe this video.", made), chat("Describe this video.", videos[0])
    if kind == "image":
        return chat("What is this?", image), chat("What is this?", image)
    assert kind == "two turns"
    messages = [
        Message.system("You watch videos."),
        Message.user(videos[1], "What is shown?"),
        Message.assistant("A test pattern."),
        Message.user("What colours?"),
    ]
    return messages, messages


KINDS = ["video", "prepared video", "image", "two turns"]


@pytest.mark.parametrize("kind", KINDS)
def test_inputs_equal_the_processors(model, videos, image, kind):
    messages, reference = chats_of(kind, model, videos, image)
    ours, theirs = build_inputs(model.processor, [messages]), processor_inputs(model.processor, reference)
    assert ours["input_ids"].tolist() == theirs["input_ids"].tolist()
    for key in ("pixel_values", "pixel_attention_mask"):
        assert torch.equal(ours[key], theirs[key]), key


@pytest.mark.parametrize("kind", KINDS)
def test_one_chat_generates_the_reference_tokens(model, videos, image, record, kind):
    messages, reference = chats_of(kind, model, videos, image)
    expected = reference_tokens(model, reference, EXACT)
    with record() as recorder:
        (answer,) = generate(model, [messages], EXACT)
    assert recorder.rows == [expected]
    assert answer == reference_text(model, expected)


@pytest.mark.parametrize("made_ahead", [False, True], ids=["pixels-when-answered", "pixels-made-ahead"])
@pytest.mark.parametrize("vision", ["per-chat", "batched"])
def test_each_row_of_a_batch_is_its_chat_alone(model, videos, image, record, monkeypatch, vision, made_ahead):
    def batch(short: Any, longer: Any) -> list[list[Message]]:
        return [chat("Describe.", short), chat("No media."), chat("This?", image), chat("Why?", longer)]

    expected = [reference_tokens(model, messages, EXACT) for messages in batch(*videos)]
    chats = batch(*(prepared(model, v) for v in videos)) if made_ahead else batch(*videos)
    monkeypatch.setattr(model, "vision", vision)
    with record() as recorder:
        answers = generate(model, chats, EXACT)
    assert recorder.rows == expected
    assert answers == [reference_text(model, tokens) for tokens in expected]


def test_streaming_generates_the_reference_tokens(model, videos, record):
    messages = chat("What happens?", videos[1])
    expected = reference_tokens(model, messages, EXACT)
    with record() as recorder:
        pieces = list(stream(model, messages, EXACT))
    assert recorder.rows == [expected]
    assert "".join(pieces).strip() == reference_text(model, expected)


def window_references(model: LoadedModel, job: CaptionJob, path: Path) -> list[list[Tokens]]:
    """Per window of the clip, per prompt: the reference tokens on the frames `sample_windows` gives."""
    sampling = job.sampling.for_frame_side(model.frame_side)
    return [
        [
            reference_tokens(model, chat(question, window), job.generation)
            for question in job.questions.values()
        ]
        for window in sample_windows(path, sampling)
    ]


def caption(model: LoadedModel, job: CaptionJob, path: Path, output: Path) -> Any:
    (record,) = Captioning(CaptionRun((str(path),), output, job), model=model)
    assert record.status == "ok", record.error
    return record


@pytest.mark.parametrize("made_ahead", [False, True], ids=["pixels-when-answered", "pixels-made-ahead"])
@pytest.mark.parametrize("vision", ["per-chat", "batched"])
def test_the_batch_engine_window_by_window(
    model, tiny_checkpoint, make_video, tmp_path, record, monkeypatch, vision, made_ahead
):
    path = make_video("parity-windows.mp4", seconds=7)
    job = CaptionJob(
        model=ModelOptions(str(tiny_checkpoint)),
        questions={"caption": Question("Describe this part.")},
        sampling=SamplingOptions(max_frames=3, window_seconds=2.5),
        generation=EXACT,
        batch_size=2,
    )
    expected = window_references(model, job, path)
    assert len(expected) == 3
    monkeypatch.setattr(model, "vision", vision)
    monkeypatch.setattr(model, "prepare_ahead", made_ahead)  # on CUDA the device's own choice
    with record() as recorder:
        result = caption(model, job, path, tmp_path / "captions.jsonl")
    assert recorder.rows == [tokens for window in expected for tokens in window]
    assert [s.caption for s in result.windows] == [reference_text(model, w[0]) for w in expected]


def test_a_prompt_file(model, tiny_checkpoint, make_video, tmp_path, record):
    prompt_file = tmp_path / "prompts.json"
    prompt_file.write_text(json.dumps({"what": "What happens?", "colours": "Which colours?"}))
    job = CaptionJob(
        model=ModelOptions(str(tiny_checkpoint)),
        questions=read_questions(prompt_file=prompt_file),
        sampling=SamplingOptions(max_frames=3, window_seconds=2.5),
        generation=EXACT,
        batch_size=3,
    )
    path = make_video("parity-windows.mp4", seconds=7)
    expected = window_references(model, job, path)
    with record() as recorder:
        result = caption(model, job, path, tmp_path / "captions.jsonl")
    assert recorder.rows == [tokens for window in expected for tokens in window]
    for segment, window in zip(result.windows, expected, strict=True):
        answers = zip(job.questions, window, strict=True)
        assert segment.answers == {name: reference_text(model, tokens) for name, tokens in answers}


FIXED = ["--max-new-tokens", "6", "--min-new-tokens", "6", "--dtype", "float32", "--device", "cpu"]


@pytest.mark.parametrize("vision", [[], ["--vision", "batched"]], ids=["default-vision", "batched-vision"])
def test_caption_on_the_example_clips(model, tiny_checkpoint, tmp_path, record, vision):
    output = tmp_path / "captions.jsonl"
    command = ["caption", str(EXAMPLE_CLIPS), "-o", str(output), "--model", str(tiny_checkpoint)]
    with record() as recorder:
        result = CliRunner().invoke(cli, [*command, *FIXED, *vision])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(records) == 3 and all(r["status"] == "ok" for r in records)
    expected = []
    for written in records:
        sampling = SamplingOptions(**written["sampling"])
        windows = list(sample_windows(written["path"], sampling))
        tokens = [reference_tokens(model, chat(written["prompts"][0]["text"], w), EXACT) for w in windows]
        assert [s["caption"] for s in written["windows"]] == [reference_text(model, t) for t in tokens]
        expected += tokens
    assert recorder.rows == expected


def test_ask(model, tiny_checkpoint, clip, record):
    question = "What is shown?"
    video = sample_video(clip, SamplingOptions().for_frame_side(model.frame_side))
    expected = reference_tokens(model, chat(question, video), EXACT)
    with record() as recorder:
        command = ["ask", str(clip), question, "--model", str(tiny_checkpoint), *FIXED]
        result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    assert recorder.rows == [expected]
    assert result.stdout == reference_text(model, expected) + "\n"


def test_the_demo_chat_through_its_handler(model, tiny_checkpoint, record):
    pytest.importorskip("gradio")
    from smolvlm_video.demo import DemoConfig
    from smolvlm_video.demo.handlers import Handlers
    from smolvlm_video.demo.settings import Settings

    name = str(tiny_checkpoint)
    handlers = Handlers(DemoConfig(model=name, models=(name,), device="cpu", dtype="float32"))
    settings = Settings(name, 4, 1.0, 0, 0, 6, 0, "Be brief.")
    sampling, generation = settings.options()
    clip = EXAMPLE_CLIPS / "testsrc2.mp4"
    video = sample_video(clip, sampling.for_frame_side(model.frame_side))

    def answer(message: dict, history: list[dict]) -> str:
        *_, (text, _, _) = handlers.chat(message, history, settings=settings)
        return text

    first = [Message.system("Be brief."), Message.user(video, "What is shown?")]
    expected_first = reference_tokens(model, first, generation)
    with record() as recorder:
        said = answer({"text": "What is shown?", "files": [str(clip)]}, [])
    assert said == reference_text(model, expected_first)  # greedy, stopped at max_new_tokens or EOS

    history = [
        {"role": "user", "content": {"path": str(clip)}},
        {"role": "user", "content": "What is shown?"},
        {"role": "assistant", "content": said},
    ]
    follow_up = [*first, Message.assistant(said), Message.user("And then?")]
    expected_follow_up = reference_tokens(model, follow_up, generation)
    with record() as recorder2:
        said_again = answer({"text": "And then?", "files": []}, history)
    assert recorder.rows == [expected_first] and recorder2.rows == [expected_follow_up]
    assert said_again == reference_text(model, expected_follow_up)
