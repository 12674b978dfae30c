"""The compiled decoding step (`model.compiling`), forced on the CPU: the same token ids as the eager loop.

The step is compiled with torch.compile's "eager" backend here, which captures the graphs (dynamo's counters
show them) in no time; one test compiles with inductor, as a GPU would. The model is shared by the module,
and each test says which path it takes (`LoadedModel.compiled`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import requires_ffmpeg
from PIL import Image
from torch._dynamo.utils import counters

from smolvlm_video import GenerationOptions, SamplingOptions, sample_video
from smolvlm_video.batch.captioning import CaptionJob, read_questions
from smolvlm_video.batch.runs import Captioning, CaptionRun
from smolvlm_video.model import compiling
from smolvlm_video.model.generate import _run, generate, stream
from smolvlm_video.model.loading import LoadedModel, load_model
from smolvlm_video.model.prompts import TRAINED_STRINGS, Chat, chat
from smolvlm_video.model.schemas import JsonSchema, Question
from smolvlm_video.options import ModelOptions

pytestmark = [pytest.mark.slow, requires_ffmpeg]

EXACT = GenerationOptions(max_new_tokens=12, min_new_tokens=12)


@pytest.fixture(scope="module")
def model(tiny_checkpoint: Path) -> LoadedModel:
    return load_model(str(tiny_checkpoint), device="cpu", dtype="float32", compile="on")


@pytest.fixture(autouse=True)
def eager_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiling, "BACKEND", "eager")


@pytest.fixture
def paths(model: LoadedModel) -> Iterator[dict[bool, object]]:
    """Runs a function on each path: `paths[True]` compiled, `paths[False]` eager."""

    def on(compiled: bool):
        def call(function, *args, **kwargs):
            model.compiled = compiled
            try:
                return function(*args, **kwargs)
            finally:
                model.compiled = True

        return call

    yield {True: on(True), False: on(False)}
    model.compiled = True


def graphs() -> int:
    """The graphs dynamo has compiled in this process so far."""
    return counters["stats"]["unique_graphs"]


@pytest.fixture(scope="module")
def media(make_video) -> dict[str, object]:
    image = Image.fromarray((np.random.default_rng(0).random((48, 64, 3)) * 255).astype("uint8"))
    video = sample_video(make_video("compiled.mp4", seconds=3), SamplingOptions(max_frames=3, frame_side=64))
    return {"image": image, "video": video}


def new_ids(model: LoadedModel, chats: list[Chat], options: GenerationOptions = EXACT) -> list[list[int]]:
    return _run(model, chats, options, TRAINED_STRINGS)[1].tolist()


def test_a_batch_of_mixed_lengths_gives_the_eager_ids(model, paths, media):
    chats = [
        chat("What is it?", media["image"]),
        chat("Describe what happens in this video, frame by frame, in some detail.", media["video"]),
        chat("Say hello.", system="You are brief."),
    ]
    before = graphs()
    compiled = paths[True](new_ids, model, chats)  # 3 chats: padded to a batch of 4
    assert graphs() > before  # something was compiled
    assert compiled == paths[False](new_ids, model, chats)
    assert paths[True](generate, model, chats, EXACT) == paths[False](generate, model, chats, EXACT)


def test_a_stream_gives_the_eager_answer(model, paths, media):
    asked = chat("What happens?", media["video"])
    pieces = paths[True](lambda: list(stream(model, asked, EXACT)))
    assert len(pieces) > 1 and "".join(pieces) == "".join(
        paths[False](lambda: list(stream(model, asked, EXACT)))
    )


def test_a_schema_constrained_answer_gives_the_eager_ids(model, paths, media):
    schema = JsonSchema.from_value(
        {"type": "object", "properties": {"busy": {"type": "boolean"}}, "required": ["busy"]}
    )
    chats = [chat(Question("Is it busy?", schema), media["image"]), chat("And this?", media["video"])]
    options = GenerationOptions(max_new_tokens=24)
    compiled = paths[True](new_ids, model, chats, options)
    assert compiled == paths[False](new_ids, model, chats, options)
    (answer, _) = paths[True](generate, model, chats, options)
    assert isinstance(json.loads(answer)["busy"], bool)


def test_a_prompt_file_captions_as_the_eager_path(model, paths, make_video, tmp_path):
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps({"what": "What happens?", "colours": "Which colours?"}))
    clip = make_video("compiled-windows.mp4", seconds=5)
    job = CaptionJob(
        model=ModelOptions(model.model_id, device="cpu", compile="on"),
        questions=read_questions(prompt_file=prompts),
        sampling=SamplingOptions(max_frames=3, window_seconds=2.5, frame_side=64),
        generation=EXACT,
        batch_size=3,
    )

    def caption(name: str) -> dict:
        (record,) = Captioning(CaptionRun((str(clip),), tmp_path / name, job), model=model)
        assert record.status == "ok", record.error
        return record.answers

    before = graphs()
    compiled = paths[True](caption, "compiled.jsonl")
    assert graphs() >= before and compiled == paths[False](caption, "eager.jsonl")


def test_other_lengths_and_batch_sizes_in_a_bucket_do_not_compile_again(model, paths, media):
    first = [chat("Hi.", media["image"]), chat("What is it?", media["image"]), chat("And?", media["video"])]
    paths[True](new_ids, model, first)  # a batch of 3: the bucket of 4 rows, and 1,024 tokens
    before = graphs()
    others = [
        [chat("A longer question about this picture, with more words.", media["image"])] * 4,
        [chat("Hm?", media["video"]), chat("What colours?", media["image"]), chat("Hello.")],
    ]
    for chats in others:
        paths[True](new_ids, model, chats, GenerationOptions(max_new_tokens=20, min_new_tokens=20))
    assert graphs() == before


def test_buckets():
    assert (
        compiling.bucket(3, compiling.BATCH_BUCKETS) == 4
        and compiling.bucket(8, compiling.BATCH_BUCKETS) == 8
    )
    assert (
        compiling.bucket(1500, compiling.CACHE_BUCKETS) == 2048 and compiling.bucket(10**6, (1, 2)) == 10**6
    )
    inputs = {"input_ids": torch.tensor([[1, 2], [3, 4], [5, 6]])}
    assert compiling.padded(inputs, 3)["input_ids"].tolist() == [[1, 2], [3, 4], [5, 6], [5, 6]]


def test_inductor_compiles_the_step_and_gives_the_eager_ids(model, paths, media, monkeypatch):
    monkeypatch.setattr(compiling, "BACKEND", "inductor")
    chats = [chat("What is it?", media["image"])]
    before = graphs()
    compiled = paths[True](new_ids, model, chats)
    assert graphs() > before and compiled == paths[False](new_ids, model, chats)


def test_caption_compiles_where_the_run_pays_it_back(monkeypatch):
    from smolvlm_video.model import devices

    monkeypatch.setattr(devices.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices.torch.backends.mps, "is_available", lambda: False)
    assert devices.choose().compile is False and "benchmarks/compile.py" in devices.choose().why[-1]
    assert devices.choose(compile="on").compile is True
    auto = ModelOptions("256M")
    assert compiling.for_caption(auto, 10**9).compile == "off"  # the CPU: no reliable win, at any length
    assert compiling.for_caption(ModelOptions("256M", compile="on"), 10).compile == "on"  # as asked
    monkeypatch.setattr(devices, "pick_device", lambda device: (torch.device("cuda"), "a fake GPU"))
    assert compiling.for_caption(auto, 12 * 256).compile == "off"  # a dozen answers: the compile costs more
    assert compiling.for_caption(auto, compiling.BREAK_EVEN_TOKENS["cuda"]).compile == "on"
    assert CaptionJob().planned_tokens(3) == 3 * 1 * 256  # the engines' measure of a run: a window a clip
