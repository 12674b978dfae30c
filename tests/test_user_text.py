"""User text is text: special-token strings in what a person writes never become special tokens.

Each front end is sent a chat whose every text (question, system prompt, prompt file, a JSON schema's
text, an assistant turn) holds "<image>", "<fake_token_around_image>", "<global-img>",
"<end_of_utterance>" and "Assistant:", then the same chat without them. Both are answered, and the
prompts' ids hold the same count of each special token: the template's and the media's, nothing more.
The demo's /chat and the server are tested the same way in test_demo.py and test_server.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FORGED, PLAIN, SPECIAL_STRINGS, forged_schema, requires_ffmpeg, special_counts
from PIL import Image
from smolvlm_video.cli.main import cli

from smolvlm_video.model.generate import generate, stream
from smolvlm_video.model.inputs import chat_batch
from smolvlm_video.model.prompts import Chat, Message, Segment, chat
from smolvlm_video.model.schemas import JsonSchema, Question
from smolvlm_video.model.tokens import prompt_ids
from smolvlm_video.options import GenerationOptions

pytestmark = [pytest.mark.slow, requires_ffmpeg]

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "examples" / "images" / "testcard.png"
VIDEO = ROOT / "examples" / "clips" / "testsrc2.mp4"


def test_plain_is_forged_without_the_special_strings():
    assert re.sub("|".join(map(re.escape, SPECIAL_STRINGS)), "", FORGED) == PLAIN


def image() -> Image.Image:
    return Image.open(IMAGE).convert("RGB")


def a_chat(text: str) -> Chat:
    messages = (
        Message.system(text),
        Message.user(image(), text),
        Message.assistant(text),
        Message.user(Question(text, JsonSchema.from_value(forged_schema(text), "test")).prompt()),
    )
    return Chat(messages, JsonSchema.from_value(forged_schema(text), "test"))


def test_user_segments_never_give_special_tokens_and_the_template_keeps_its_own(tiny_model):
    tokenizer = tiny_model.processor.tokenizer
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    (ids,) = prompt_ids(
        tokenizer, [[Segment("<image>"), Segment("<image> text", user=True), Segment("<image>")]]
    )
    assert ids.count(image_id) == 2 and ids[0] == ids[-1] == image_id
    assert tokenizer.decode(ids[1:-1]) == "<image> text"


def test_plain_text_gives_the_ids_of_the_whole_string(tiny_model):
    tokenizer = tiny_model.processor.tokenizer
    text = "<|im_start|>User: Describe it.<end_of_utterance>\nAssistant:"
    segments = [
        Segment("<|im_start|>User: "),
        Segment("Describe it.", user=True),
        Segment("<end_of_utterance>\nAssistant:"),
    ]
    assert prompt_ids(tokenizer, [segments]) == [tokenizer(text)["input_ids"]]


def test_generate_and_stream_answer_and_add_no_special_token(tiny_model, prompts):
    tokenizer = tiny_model.processor.tokenizer
    for text in (FORGED, PLAIN):
        generate(tiny_model, [a_chat(text)], GenerationOptions(max_new_tokens=24))
        "".join(
            stream(
                tiny_model,
                chat(text, image(), system=text),
                GenerationOptions(max_new_tokens=4),
            )
        )
    forged, plain = (
        special_counts(tokenizer, prompts[:2]),
        special_counts(tokenizer, prompts[2:]),
    )
    assert forged == plain and len(prompts) == 4


def test_a_forged_end_of_turn_stays_in_the_users_turn(tiny_model):
    tokenizer = tiny_model.processor.tokenizer
    ids = chat_batch(tiny_model.processor, [chat(FORGED)]).inputs["input_ids"][0].tolist()
    end = tokenizer.convert_tokens_to_ids("<end_of_utterance>")
    assert ids.count(end) == 1  # the template's, after the whole question
    assert (
        tokenizer.decode(ids, skip_special_tokens=True).count("Assistant:") == 2
    )  # one typed, one the template's


def test_ask_answers_and_adds_no_special_token(tiny_checkpoint, tiny_model, prompts, tmp_path):
    tokenizer = tiny_model.processor.tokenizer
    for text in (FORGED, PLAIN):
        schema_file = tmp_path / "schema.json"
        schema_file.write_text(json.dumps(forged_schema(text)))
        for media in (IMAGE, VIDEO):
            args = ["ask", str(media), text, "--model", str(tiny_checkpoint), "--system", text,
                    "--max-new-tokens", "48", "--max-frames", "2",
                    "--json-schema", str(schema_file)]  # fmt: skip
            result = CliRunner().invoke(cli, args)
            assert result.exit_code == 0, result.output
    assert len(prompts) == 4
    assert special_counts(tokenizer, prompts[:2]) == special_counts(tokenizer, prompts[2:])


def test_caption_with_a_prompt_file_answers_every_window(tiny_checkpoint, tiny_model, prompts, tmp_path):
    tokenizer = tiny_model.processor.tokenizer
    counts = []
    for name, text in (("forged", FORGED), ("plain", PLAIN)):
        prompt_file = tmp_path / f"{name}.json"
        prompt_file.write_text(
            json.dumps({"caption": text, "tags": {"prompt": text, "schema": forged_schema(text)}})
        )
        out = tmp_path / f"{name}.jsonl"
        args = ["caption", str(VIDEO), "-o", str(out), "--model", str(tiny_checkpoint), "--quiet",
                "--prompt-file", str(prompt_file), "--system", text,
                "--max-new-tokens", "48", "--max-frames", "2"]  # fmt: skip
        before = len(prompts)
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        (record,) = [json.loads(line) for line in out.read_text().splitlines()]
        assert record["error"] is None and set(record["answers"]) == {"caption", "tags"}, record["error"]
        counts.append(special_counts(tokenizer, prompts[before:]))
    assert counts[0] == counts[1] and counts[0]
