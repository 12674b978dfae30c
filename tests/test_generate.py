"""Loading and generating on the tiny offline checkpoint."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import requires_ffmpeg
from PIL import Image

from smolvlm_video import GenerationOptions, SamplingOptions, sample_video
from smolvlm_video.errors import ModelLoadError
from smolvlm_video.model.generate import _embedded, _inputs, _RowStreamer, generate, stream
from smolvlm_video.model.loading import MODELS, load_model, resolve_model_id
from smolvlm_video.model.prompts import TRAINED_STRINGS, chat
from smolvlm_video.model.registry import model_spec

pytestmark = [pytest.mark.slow, requires_ffmpeg]
EXACT = GenerationOptions(max_new_tokens=6, min_new_tokens=6)


@pytest.fixture(scope="module")
def videos(make_video, tiny_model):
    options = SamplingOptions(max_frames=8).for_frame_side(tiny_model.frame_side)
    short = sample_video(make_video("gen-short.mp4", seconds=3), options)
    longer = sample_video(make_video("gen-long.mp4", seconds=6), options)
    assert short.frame_count != longer.frame_count
    return short, longer


def test_loads_through_the_user_path(tiny_model):
    assert tiny_model.frame_side == 64 and tiny_model.tokens_per_frame == 4
    assert str(tiny_model.device) == "cpu" and tiny_model.dtype.is_floating_point
    assert tiny_model.attention == "sdpa" and tiny_model.vision == "per-chat"  # the CPU's choices
    assert not tiny_model.prepare_ahead  # the CPU's choice; tests/test_parity.py forces it
    assert not tiny_model.compiled  # the CPU's choice; tests/test_compiling.py forces it
    assert len(tiny_model.why) == 6  # device, dtype, attention, vision, pixels made ahead, compiling: and why


def test_generate_one(tiny_model, videos):
    (answer,) = generate(tiny_model, [chat("Describe this video.", videos[0])], EXACT)
    assert isinstance(answer, str) and answer and "Assistant" not in answer


def test_batch_of_videos_with_different_frame_counts(tiny_model, videos):
    chats = [chat("Describe this video.", video) for video in videos]
    batched = generate(tiny_model, chats, EXACT)
    alone = [generate(tiny_model, [c], EXACT)[0] for c in chats]
    assert batched == alone  # left padding and padded frames change nothing


def test_batched_vision_gives_what_per_chat_vision_gives(tiny_model, videos):
    image = Image.fromarray(videos[0].frames[0])
    chats = [chat("Describe.", videos[0]), chat("No text."), chat("This?", image), chat("Why?", videos[1])]
    tiny_model.features.clear()  # every medium is encoded below, none comes from the cache
    batch, _ = _inputs(tiny_model, chats, TRAINED_STRINGS)
    embeds, answers = {}, {}
    try:
        for vision in ("per-chat", "batched"):
            tiny_model.vision = vision
            with torch.inference_mode():
                embeds[vision] = _embedded(tiny_model, batch, {})["inputs_embeds"]
            tiny_model.features.clear()
            answers[vision] = generate(tiny_model, chats, EXACT)
    finally:
        tiny_model.vision = "per-chat"
    assert torch.allclose(embeds["batched"], embeds["per-chat"], atol=1e-5)
    assert answers["batched"] == answers["per-chat"]


def test_the_encoder_in_chunks_gives_the_features_of_one_call(tiny_model, videos):
    chats = [chat("Describe.", videos[1])]  # more frames than the smallest chunk below
    tiny_model.features.clear()  # so the batch carries the video's pixels
    batch, _ = _inputs(tiny_model, chats, TRAINED_STRINGS)
    calls, encoder, chunk_before = [], tiny_model.model.get_image_features, tiny_model.vision_chunk
    embeds = {}
    try:
        tiny_model.model.get_image_features = lambda **kw: calls.append(kw) or encoder(**kw)
        for chunk in (1000, 3):
            tiny_model.vision_chunk, calls[:] = chunk, []
            tiny_model.features.clear()
            with torch.inference_mode():
                embeds[chunk] = _embedded(tiny_model, batch, {})["inputs_embeds"]
            assert max(call["pixel_values"].shape[1] for call in calls) <= chunk
    finally:
        del tiny_model.model.get_image_features
        tiny_model.vision_chunk = chunk_before
    assert len(calls) == -(-videos[1].frame_count // 3) > 1
    assert torch.allclose(embeds[1000], embeds[3], atol=1e-5)


def test_stream_yields_the_same_answer_piece_by_piece(tiny_model, videos):
    messages = chat("What happens?", videos[0])
    pieces = list(stream(tiny_model, messages, EXACT))
    assert len(pieces) > 1
    assert "".join(pieces).strip() == generate(tiny_model, [messages], EXACT)[0]


def test_stream_can_be_cancelled(tiny_model, videos):
    cancel = threading.Event()
    options = GenerationOptions(max_new_tokens=200, min_new_tokens=200)
    pieces = []
    for piece in stream(tiny_model, chat("Go on.", videos[0]), options, cancel=cancel):
        pieces.append(piece)
        cancel.set()
    assert len(pieces) < 20
    assert not [t for t in threading.enumerate() if t.name == "smolvlm-generate"]


def test_closing_the_stream_stops_generation(tiny_model, videos):
    pieces = stream(
        tiny_model, chat("Go on.", videos[0]), GenerationOptions(max_new_tokens=200, min_new_tokens=200)
    )
    next(pieces)
    pieces.close()
    assert not [t for t in threading.enumerate() if t.name == "smolvlm-generate"]


def test_registry():
    assert resolve_model_id("256M") == MODELS["256M"].hub_id == "HuggingFaceTB/SmolVLM2-256M-Video-Instruct"
    assert resolve_model_id("someone/model") == "someone/model"
    assert model_spec("HuggingFaceTB/SmolVLM2-2.2B-Instruct") is MODELS["2.2B"] and model_spec("mine") is None


@contextlib.contextmanager
def hub_endpoint(kind: str) -> Iterator[dict[str, str]]:
    """Environment for a Hub that is off (HF_HUB_OFFLINE), refuses connections, or never answers."""
    if kind == "offline":
        yield {"HF_HUB_OFFLINE": "1"}
        return
    with socket.socket() as server:  # bound, not listening: refused; listening, never accepting: silent
        server.bind(("127.0.0.1", 0))
        if kind == "silent":
            server.listen(16)
        yield {"HF_ENDPOINT": f"http://127.0.0.1:{server.getsockname()[1]}", "HF_HUB_OFFLINE": "0"}


@pytest.mark.parametrize("kind", ["offline", "refusing", "silent"])
def test_without_the_hub_or_the_cache_the_cli_fails_fast_and_clearly(tmp_path, kind):
    image = Path(__file__).resolve().parent.parent / "examples" / "images" / "testcard.png"
    command = [sys.executable, "-m", "smolvlm_video", "ask", str(image), "What is this?", "--device", "cpu"]
    with hub_endpoint(kind) as hub:
        env = {**os.environ, "HF_HOME": str(tmp_path / "empty-cache"), **hub}
        env.pop("HF_HUB_ETAG_TIMEOUT", None)
        started = time.monotonic()
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        seconds = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    assert "HuggingFaceTB/SmolVLM2-256M-Video-Instruct" in result.stderr
    assert "could not be reached" in result.stderr and "local checkpoint" in result.stderr
    assert "Traceback" not in result.stderr and "Retrying" not in result.stderr
    assert seconds < 20, f"{seconds:.1f} s"


def test_an_unreachable_hub_loads_a_cached_model_from_the_cache(tiny_checkpoint, tmp_path):
    """The Hub cache's own layout (models--org--name/snapshots/REV, refs/main), filled with the tiny model."""
    repo = tmp_path / "hub" / "models--someone--tiny-smolvlm"
    shutil.copytree(tiny_checkpoint, repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    code = "from smolvlm_video import load_model; print(load_model('someone/tiny-smolvlm').frame_side)"
    with hub_endpoint("refusing") as hub:
        env = {**os.environ, "HF_HOME": str(tmp_path), **hub}
        started = time.monotonic()
        command = [sys.executable, "-c", code]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "64" and "from the local cache only" in result.stderr
    assert "Retrying" not in result.stderr and seconds < 20, f"{seconds:.1f} s"


def test_folder_that_is_not_a_checkpoint(tmp_path):
    with pytest.raises(ModelLoadError, match="not a loadable SmolVLM checkpoint"):
        load_model(str(tmp_path), device="cpu")


def test_the_streamer_decodes_only_the_newest_tokens_and_its_pieces_join(tiny_model):
    tokenizer = tiny_model.processor.tokenizer
    ids = tokenizer.encode("Ein Bär, 日本語 und ein Käfer. " * 40, add_special_tokens=False)
    lengths = []

    def decode(tokens, **kwargs):
        lengths.append(len(tokens))
        return tokenizer.decode(tokens, **kwargs)

    pieces = []
    streamer = _RowStreamer(tiny_model, 1, lambda row, piece: pieces.append(piece))
    streamer.decode = decode
    streamer.put(torch.zeros(1, 3, dtype=torch.long))  # the prompt
    for token in ids:
        streamer.put(torch.tensor([[token]]))
    assert max(lengths) < 16  # a window of the newest tokens, not the answer so far
    streamer.end()
    assert "".join(pieces) == streamer.text(0) == tokenizer.decode(ids).strip()
    assert len(pieces) > 40
