"""Our prompt templating against transformers' SmolVLMProcessor: same frames and text, same ids and pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import requires_ffmpeg
from PIL import Image
from transformers.video_utils import VideoMetadata

from smolvlm_video import SamplingOptions, sample_video
from smolvlm_video.inputs import build_inputs
from smolvlm_video.prompts import Message, PromptStrings, chat, clock, render_chat, video_tokens

pytestmark = pytest.mark.slow


def _image(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


def _reference(processor, conversation, images=None, videos=None):
    text = processor.apply_chat_template(conversation, add_generation_prompt=True)
    kwargs = {}
    if videos:
        kwargs["video_metadata"] = [
            VideoMetadata(
                total_num_frames=v.info.frame_count,
                fps=v.info.fps,
                duration=v.info.duration,
                frames_indices=list(v.indices),
            )
            for v in videos
        ]
        kwargs.update(videos=[v.frames for v in videos], do_sample_frames=False)
    return processor(text=text, images=images, return_tensors="pt", **kwargs)


def _assert_same(ours, reference):
    assert ours["input_ids"].tolist() == reference["input_ids"].tolist()
    for key in ("pixel_values", "pixel_attention_mask"):
        if key in reference:
            assert torch.equal(ours[key], reference[key]), key


def _video(path, tiny_model, max_frames):
    return sample_video(path, SamplingOptions(max_frames=max_frames).for_frame_side(tiny_model.frame_side))


def test_one_image(tiny_model):
    image = _image(150, 100, 0)
    ours = build_inputs(tiny_model.processor, [chat("What is this?", image)])
    conversation = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]}
    ]
    _assert_same(ours, _reference(tiny_model.processor, conversation, images=[[image]]))


def test_two_images(tiny_model):
    first, second = _image(150, 100, 1), _image(120, 300, 2)
    ours = build_inputs(tiny_model.processor, [chat("Compare them.", first, second)])
    content = [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Compare them."}]
    reference = _reference(
        tiny_model.processor, [{"role": "user", "content": content}], images=[[first, second]]
    )
    _assert_same(ours, reference)


@requires_ffmpeg
@pytest.mark.parametrize(("seconds", "max_frames"), [(3, 64), (80, 64)])
def test_video(make_video, tiny_model, seconds, max_frames):
    video = _video(
        make_video(f"parity{seconds}.mp4", size="64x48", rate=5, seconds=seconds), tiny_model, max_frames
    )
    assert video.frame_count == min(seconds, 64)
    ours = build_inputs(tiny_model.processor, [chat("Describe this video.", video)])
    conversation = [
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Describe this video."}]}
    ]
    _assert_same(ours, _reference(tiny_model.processor, conversation, videos=[video]))


@requires_ffmpeg
def test_two_turn_chat_with_system_message(clip, tiny_model):
    video = _video(clip, tiny_model, 8)
    messages = [
        Message.system("You watch videos."),
        Message.user(video, "What is shown?"),
        Message.assistant("A test pattern."),
        Message.user("What colours?"),
    ]
    ours = build_inputs(tiny_model.processor, [messages])
    conversation = [
        {"role": "system", "content": [{"type": "text", "text": "You watch videos."}]},
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What is shown?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A test pattern."}]},
        {"role": "user", "content": [{"type": "text", "text": "What colours?"}]},
    ]
    _assert_same(ours, _reference(tiny_model.processor, conversation, videos=[video]))


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
