"""Each medium through the vision encoder once: shared in a batch, kept across calls, answers unchanged."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import requires_ffmpeg
from PIL import Image
from reference import reference_tokens

from smolvlm_video import GenerationOptions, SamplingOptions, sample_video
from smolvlm_video.batch.captioning import CaptionJob
from smolvlm_video.batch.runs import Captioning, CaptionRun
from smolvlm_video.model.features import FeatureCache
from smolvlm_video.model.generate import generate
from smolvlm_video.model.inputs import build_inputs
from smolvlm_video.model.loading import LoadedModel, load_model
from smolvlm_video.model.media import encode_medium, medium_key
from smolvlm_video.model.prompts import Message, chat
from smolvlm_video.model.schemas import Question
from smolvlm_video.options import ModelOptions

pytestmark = [pytest.mark.slow, requires_ffmpeg]
EXACT = GenerationOptions(max_new_tokens=6, min_new_tokens=6)
QUESTIONS = ["Describe this video.", "What colours are there?", "Is anything moving?"]


@pytest.fixture(scope="module")
def model(tiny_checkpoint: Path) -> LoadedModel:
    model = load_model(str(tiny_checkpoint), device="cpu", dtype="float32")
    model.vision_chunk = 1000  # one encoder call per group of media (chunks: test_generate.py)
    return model


@pytest.fixture
def calls(model: LoadedModel, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of images of each vision-encoder call, as the calls happen; the cache starts empty."""
    made: list[int] = []
    encode = model.model.get_image_features

    def counted(pixel_values: torch.Tensor, **kwargs: object) -> object:
        made.append(int(pixel_values.shape[1]))
        return encode(pixel_values=pixel_values, **kwargs)

    monkeypatch.setattr(model.model, "get_image_features", counted)
    model.features = FeatureCache.for_device(model.device)
    return made


@pytest.fixture(scope="module")
def videos(make_video, model: LoadedModel):
    sampling = SamplingOptions(max_frames=4).for_frame_side(model.frame_side)
    made = [make_video(f"features-{n}.mp4", size=f"{160 + 32 * n}x120", seconds=4) for n in range(5)]
    return [sample_video(path, sampling) for path in made]  # 4 frames each, of five shapes


@pytest.fixture(params=["per-chat", "batched"])
def vision(request: pytest.FixtureRequest, model: LoadedModel) -> Iterator[str]:
    model.vision = request.param
    yield request.param
    model.vision = "per-chat"


def alone(model: LoadedModel, chats: list) -> list[str]:
    """Each chat answered by itself, every medium encoded afresh."""
    answers = []
    for one in chats:
        model.features.clear()
        answers += generate(model, [one], EXACT)
    return answers


def test_a_prompt_file_on_one_video_encodes_it_once(model, videos, calls, vision):
    chats = [chat(question, videos[0]) for question in QUESTIONS]
    shared = generate(model, chats, EXACT)
    assert calls == [videos[0].frame_count]  # one call, of that video's frames only
    assert shared == alone(model, chats)


def test_a_mixed_batch_encodes_each_distinct_medium_once(model, videos, calls, vision):
    image = Image.fromarray(videos[3].frames[1])
    chats = [
        chat("Describe.", videos[0]),
        chat("And the colours?", videos[0]),
        chat("This?", image),
        chat("No media."),
        chat("Compare.", videos[1], image),
        chat("Describe.", videos[1]),
    ]
    shared = generate(model, chats, EXACT)
    tiles = encode_medium(model.processor, image).pixels.values.shape[1]  # its tiles and its global view
    frames = videos[0].frame_count + videos[1].frame_count + tiles
    assert sum(calls) == frames and len(calls) == (1 if vision == "batched" else 3)
    assert shared == alone(model, chats)


def test_a_follow_up_turn_reuses_the_features_and_answers_as_transformers_does(model, videos, calls, vision):
    first = chat(QUESTIONS[0], videos[2])
    (answer,) = generate(model, [first], EXACT)
    follow_up = [*first, Message.assistant(answer), Message.user(QUESTIONS[1])]
    (again,) = generate(model, [follow_up], EXACT)
    assert calls == [videos[2].frame_count]  # the follow-up made no encoder call
    assert model.features.stats.hits >= 1
    expected = reference_tokens(model, follow_up, EXACT)  # transformers' own processor and generate
    assert again == model.processor.tokenizer.decode(expected.new, skip_special_tokens=True).strip()


def test_the_cache_stays_under_its_bound(model, videos, calls):
    one = videos[0].frame_count * model.tokens_per_frame * model.model.config.text_config.hidden_size * 4
    model.features = FeatureCache(int(2.5 * one))  # room for two videos' features, in float32
    for video in videos:
        generate(model, [chat("Describe.", video)], EXACT)
        assert model.features.bytes <= model.features.max_bytes and len(model.features) <= 2
    assert model.features.stats.evicted == len(videos) - 2 and len(calls) == len(videos)
    assert medium_key(videos[-1]) in model.features and medium_key(videos[0]) not in model.features


def test_no_cache_still_shares_within_a_batch(model, videos, calls):
    model.features = FeatureCache(0)
    generate(model, [chat(q, videos[0]) for q in QUESTIONS], EXACT)
    generate(model, [chat("Again?", videos[0])], EXACT)
    assert calls == [videos[0].frame_count] * 2 and len(model.features) == 0


def test_a_medium_is_known_by_its_pixels(model, videos):
    copy = sample_video(videos[0].path, SamplingOptions(max_frames=4, frame_side=model.frame_side))
    assert copy is not videos[0] and medium_key(copy) == medium_key(videos[0])
    assert medium_key(videos[0]) != medium_key(videos[1])
    image = Image.fromarray(videos[0].frames[0])
    assert medium_key(image) == medium_key(image.copy()) != medium_key(image.rotate(90))


def test_caption_with_a_prompt_file_encodes_each_window_once(model, make_video, calls, tmp_path):
    clip = make_video("features-windows.mp4", seconds=6)
    questions = {f"q{n}": Question(question) for n, question in enumerate([*QUESTIONS, "Any text?"])}
    job = CaptionJob(
        model=ModelOptions(model.model_id, device="cpu"),
        questions=questions,
        sampling=SamplingOptions(max_frames=4, window_seconds=2),
        generation=EXACT,
        batch_size=4,
    )
    records = list(Captioning(CaptionRun((str(clip),), tmp_path / "out.jsonl", job), model=model))
    (record,) = records
    assert record.status == "ok" and len(record.windows) == 3
    assert len(calls) == 3  # one encoder call a window, for its four prompts
    written = json.loads((tmp_path / "out.jsonl").read_text(encoding="utf-8"))
    assert set(written["timings"]) == {"decode", "encode", "generate", "speech"}
    assert written["timings"]["encode"] > 0 and written["timings"]["speech"] is None  # speech was off


def test_the_demo_encodes_a_follow_up_and_a_second_upload_of_the_same_video_never(
    model, tiny_checkpoint, clip, calls
):
    pytest.importorskip("gradio")
    from smolvlm_video.demo import DemoConfig
    from smolvlm_video.demo.handlers import Handlers
    from smolvlm_video.demo.settings import Settings

    name = str(tiny_checkpoint)
    config = DemoConfig(model=name, models=(name,), device="cpu", dtype="float32")
    handlers = Handlers(config)
    handlers.models.get = lambda options: model  # type: ignore[method-assign]  # the counted model
    settings = Settings(name, 4, 1.0, 0, 0, 6, 0, "")
    uploads = [handlers.allowed[0] / "features-test" / f"upload-{n}" / "clip.mp4" for n in range(2)]
    for upload in uploads:
        upload.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, upload)

    *_, (answer, _, seen) = handlers.chat(
        {"text": "What is shown?", "files": [str(uploads[0])]}, [], settings=settings
    )
    assert len(calls) == 1 and "from the cache" not in seen
    history = [
        {"role": "user", "content": {"path": str(uploads[0])}},
        {"role": "user", "content": "What is shown?"},
        {"role": "assistant", "content": answer},
    ]
    *_, (_, _, seen) = handlers.chat({"text": "And then?", "files": []}, history, settings=settings)
    assert len(calls) == 1 and "from the cache" in seen  # the follow-up encoded nothing
    *_, (_, _, seen) = handlers.ask(str(uploads[1]), "What is it?", settings=settings)
    assert len(calls) == 1 and "from the cache" in seen  # another file, the same frames: a hit


def test_windows_with_the_same_frames_keep_their_own_timestamps(model, videos):
    later = dataclasses.replace(videos[0], timestamps=tuple(t + 30 for t in videos[0].timestamps))
    chats = [chat("Describe.", videos[0]), chat("Describe.", later)]
    inputs = build_inputs(model.processor, chats)
    rows = zip(inputs["input_ids"], inputs["attention_mask"], strict=True)
    together = [ids[mask.bool()].tolist() for ids, mask in rows]  # each row without its left padding
    alone = [build_inputs(model.processor, [one])["input_ids"][0].tolist() for one in chats]
    assert medium_key(later) == medium_key(videos[0])  # the same pixels: encoded once
    assert together == alone and together[0] != together[1]  # each states its own times


def test_palette_images_with_other_colours_are_other_media():
    indices = Image.new("P", (8, 8), 1)
    indices.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    other = indices.copy()
    other.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    assert indices.tobytes() == other.tobytes() and medium_key(indices) != medium_key(other)
