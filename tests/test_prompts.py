"""Our prompt templating against transformers' SmolVLMProcessor: same frames and text, same ids and pixels.

Generation on every path is checked against transformers' own in test_parity.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import requires_ffmpeg
from PIL import Image
from reference import processor_inputs

from smolvlm_video import SamplingOptions, sample_video
from smolvlm_video.model.inputs import build_inputs
from smolvlm_video.model.media import video_tokens
from smolvlm_video.model.prompts import Message, PromptStrings, chat, clock, render_chat

pytestmark = pytest.mark.slow


def _image(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


def _assert_same(messages, processor):
    ours, reference = build_inputs(processor, [messages]), processor_inputs(processor, messages)
    assert ours["input_ids"].tolist() == reference["input_ids"].tolist()
    for key in ("pixel_values", "pixel_attention_mask"):
        if key in reference:
            assert torch.equal(ours[key], reference[key]), key


def _video(path, tiny_model, max_frames):
    return sample_video(path, SamplingOptions(max_frames=max_frames).for_frame_side(tiny_model.frame_side))


def test_one_image(tiny_model):
    _assert_same(chat("What is this?", _image(150, 100, 0)), tiny_model.processor)


def test_two_images(tiny_model):
    _assert_same(chat("Compare them.", _image(150, 100, 1), _image(120, 300, 2)), tiny_model.processor)


@requires_ffmpeg
@pytest.mark.parametrize(("seconds", "max_frames"), [(3, 64), (80, 64)])
def test_video(make_video, tiny_model, seconds, max_frames):
    video = _video(
        make_video(f"parity{seconds}.mp4", size="64x48", rate=5, seconds=seconds), tiny_model, max_frames
    )
    assert video.frame_count == min(seconds, 64)
    _assert_same(chat("Describe this video.", video), tiny_model.processor)


@requires_ffmpeg
def test_two_turn_chat_with_system_message(clip, tiny_model):
    video = _video(clip, tiny_model, 8)
    messages = [
        Message.system("You watch videos."),
        Message.user(video, "What is shown?"),
        Message.assistant("A test pattern."),
        Message.user("What colours?"),
    ]
    _assert_same(messages, tiny_model.processor)


def test_an_image_first_takes_no_space_and_anything_else_does(tiny_model):
    """The template's rule: "User:" before an image, "User: " before text or a video."""
    image = _image(30, 20, 3)
    assert render_chat([Message.user(image, "Hi")], ["<img>"]).startswith("<|im_start|>User:<img>Hi")
    assert render_chat([Message.user("Hi", image)], ["<img>"]).startswith("<|im_start|>User: Hi<img>")


def test_a_part_that_is_no_medium_is_refused(tiny_model):
    with pytest.raises(TypeError, match="PIL images and SampledVideo, not dict"):
        build_inputs(tiny_model.processor, [[Message.user({"frames": []}, "Hi")]])  # type: ignore[arg-type]


def test_text_only_chat():
    assert render_chat(chat("Hi", system="Be brief.")) == (
        "<|im_start|>System: Be brief.<end_of_utterance>\nUser: Hi<end_of_utterance>\nAssistant:"
    )


def test_video_markers_and_overrides():
    text = video_tokens([0.0, 65.4], duration=210.7, tokens_per_frame=1)
    assert text.startswith(
        "You are provided the following series of two frames from a 0:03:30 [H:MM:SS] video.\n"
    )
    assert "\nFrame from 00:00:" in text and "\nFrame from 01:05:" in text and text.endswith("\n\n")
    custom = PromptStrings(
        video_intro="{frame_count} frames, {video_duration}:", frame_timestamp="[{timestamp}]"
    )
    assert video_tokens([1.0], 5, 1, custom).startswith("one frames, 0:00:05:[00:01]")
    assert clock(3599) == "59:59" and clock(3600) == "60:00"
