"""Speech: a spoken sentence at a known time (espeak-ng) in a 3-shot clip, silence around it; clips with
silence, with no audio stream and with an undecodable one; a tiny random-weight Whisper.

Random weights make the words noise; the voice gate makes the timing real.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import H264, ffmpeg, requires_ffmpeg
from reference import reference_tokens
from smolvlm_video.cli.main import cli
from transformers import AutoTokenizer

from smolvlm_video import GenerationOptions, SamplingOptions, sample_video
from smolvlm_video.batch.captioning import CaptionJob, caption_clips
from smolvlm_video.batch.subtitles import cues
from smolvlm_video.errors import OptionsError
from smolvlm_video.export.tables import SEGMENT
from smolvlm_video.model.generate import generate
from smolvlm_video.model.prompts import chat
from smolvlm_video.model.schemas import Question
from smolvlm_video.options import ModelOptions
from smolvlm_video.speech import SpeechOptions, Transcribing, Transcript, speech_question
from smolvlm_video.speech.recognizer import load_speech_model

pytestmark = [
    pytest.mark.slow,
    requires_ffmpeg,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
]

SPOKEN_AT = 3.0  # the sentence starts here, in the second of three 3 s shots
SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."
SHOTS = [
    arg
    for colour in ("red", "green", "blue")
    for arg in ("-f", "lavfi", "-i", f"color={colour}:s=128x96:d=3:r=10")
]
JOINED = "[0:v][1:v][2:v]concat=n=3:v=1:a=0[v]"
EXACT = GenerationOptions(max_new_tokens=4, min_new_tokens=4)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """spoken, silent, mute (no audio stream) and damaged (no audio packet decodes) clips, 9 s each."""
    folder = tmp_path_factory.mktemp("speech")
    wav = folder / "sentence.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), SENTENCE], check=True)
    made = {name: folder / f"{name}.mp4" for name in ("spoken", "silent", "mute")}
    speech = f"{JOINED};[3:a]adelay={int(SPOKEN_AT * 1000)}:all=1,apad=whole_dur=9[a]"
    encode = [*H264, "-c:a", "aac", "-t", "9"]
    ffmpeg(
        *SHOTS,
        "-i",
        str(wav),
        "-filter_complex",
        speech,
        "-map",
        "[v]",
        "-map",
        "[a]",
        *encode,
        str(made["spoken"]),
    )
    silence = ["-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono"]
    ffmpeg(
        *SHOTS,
        *silence,
        "-filter_complex",
        JOINED,
        "-map",
        "[v]",
        "-map",
        "3:a",
        *encode,
        str(made["silent"]),
    )
    ffmpeg(*SHOTS, "-filter_complex", JOINED, "-map", "[v]", *H264, str(made["mute"]))
    made["damaged"] = damaged(folder, wav)
    return made


def damaged(folder: Path, wav: Path) -> Path:
    """An AVI of MPEG-4 video and AC-3 audio whose every audio packet's bytes are zeroed."""
    path = folder / "damaged.avi"
    speech = f"{JOINED};[3:a]adelay=3000:all=1,apad=whole_dur=9[a]"
    ffmpeg(*SHOTS, "-i", str(wav), "-filter_complex", speech, "-map", "[v]", "-map", "[a]", "-c:v", "mpeg4",
           "-c:a", "ac3", "-t", "9", str(path))  # fmt: skip
    with av.open(str(path)) as container:
        packets = [(p.pos, p.size) for p in container.demux(container.streams.audio[0]) if p.size]
    data = bytearray(path.read_bytes())
    for position, size in packets:
        data[position : position + size] = bytes(size)
    path.write_bytes(bytes(data))
    return path


def spoken_span(clips: dict[str, Path]) -> tuple[float, float]:
    with av.open(str(clips["spoken"].parent / "sentence.wav")) as container:
        stream = container.streams.audio[0]
        seconds = sum(frame.samples for frame in container.decode(stream)) / stream.sample_rate
    return SPOKEN_AT, SPOKEN_AT + seconds


@pytest.fixture(scope="module")
def whisper(tiny_whisper) -> Path:
    return tiny_whisper


@pytest.fixture(scope="module")
def transcribing(whisper, tiny_model) -> Transcribing:
    options = SpeechOptions(mode="record", speech_model=str(whisper))
    return Transcribing(load_speech_model(options, tiny_model.device, tiny_model.dtype))


def test_segments_fall_within_the_spoken_span_and_silence_has_none(clips, transcribing):
    start, end = spoken_span(clips)
    spoken = transcribing.transcribe(clips["spoken"])
    assert spoken.segments and spoken.error is None and spoken.language
    assert all(start - 0.5 <= s.start <= s.end <= end + 0.5 for s in spoken.segments), spoken.segments
    for name in ("silent", "mute"):
        quiet = transcribing.transcribe(clips[name])
        assert quiet.segments == () and quiet.error is None
    later = transcribing.transcribe(clips["spoken"], start=end + 0.5, end=9.0)  # the span asked, no more
    assert later.segments == ()


def test_an_undecodable_audio_stream_is_the_transcripts_error(clips, transcribing):
    transcript = transcribing.transcribe(clips["damaged"])
    assert transcript.segments == () and transcript.error["type"] == "audio_error"
    assert "damaged" in transcript.error["message"]


def caption(tiny_checkpoint: Path, whisper: Path, *args: object):
    base = ["caption", "--model", str(tiny_checkpoint), "--max-new-tokens", "4", "--quiet",
            "--speech-model", str(whisper), "--window-seconds", "3"]  # fmt: skip
    return CliRunner().invoke(cli, [*base, *map(str, args)])


@pytest.fixture(scope="module")
def captioned(tmp_path_factory, clips, tiny_checkpoint, whisper) -> Path:
    """`caption --speech record --subtitles srt --subtitles-from both` over the four clips."""
    folder = tmp_path_factory.mktemp("captioned")
    for path in clips.values():
        shutil.copy(path, folder / path.name)
    out = folder / "captions.jsonl"
    result = caption(tiny_checkpoint, whisper, folder, "-o", out, "--speech", "record", "--subtitles", "srt",
                     "--subtitles-from", "both")  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def records(path: Path) -> dict[str, dict]:
    found = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return {Path(record["path"]).stem: record for record in found}


def test_records_have_speech_with_fixed_types_and_captions_whatever_the_audio(captioned, clips):
    by_name = records(captioned)
    assert set(by_name) == {"spoken", "silent", "mute", "damaged"}
    start, end = spoken_span(clips)
    for name, record in by_name.items():
        assert record["status"] == "ok" and len(record["windows"]) == 3, name
        speech = record["speech"]
        assert set(speech) == {"language", "segments", "error"}
        assert all(isinstance(w["speech_text"], str) for w in record["windows"])
        assert isinstance(record["timings"]["speech"], float)
        for segment in speech["segments"]:
            assert [type(segment[k]) for k in ("start", "end", "text")] == [float, float, str]
    spoken = by_name["spoken"]
    assert isinstance(spoken["speech"]["language"], str) and spoken["speech"]["segments"]
    assert all(start - 0.5 <= s["start"] <= s["end"] <= end + 0.5 for s in spoken["speech"]["segments"])
    assert spoken["windows"][0]["speech_text"] == ""  # 0-3 s: silence
    assert spoken["windows"][1]["speech_text"]
    for name in ("silent", "mute"):
        assert by_name[name]["speech"]["segments"] == [] and by_name[name]["speech"]["error"] is None
    assert by_name["damaged"]["speech"]["error"]["type"] == "audio_error"


def test_srt_from_both_has_caption_and_speech_cues_in_time_order(captioned):
    spoken = records(captioned)["spoken"]
    (srt,) = captioned.parent.glob(f"spoken.{spoken['id'][:8]}.srt")
    text = srt.read_text(encoding="utf-8")
    blocks = [block.splitlines() for block in text.strip().split("\n\n")]
    starts = [block[1].split(" --> ")[0] for block in blocks]
    assert starts == sorted(starts)
    speech = spoken["speech"]["segments"]
    assert len(blocks) == len(spoken["windows"]) + len(speech)
    assert any(block[1].startswith("00:00:03,000") for block in blocks)  # a window's cue
    assert any(block[2] == speech[0]["text"].strip() for block in blocks)  # a segment's cue


def test_subtitles_from_speech_need_speech(tiny_checkpoint, whisper, clips, tmp_path):
    out = tmp_path / "o.jsonl"
    result = caption(tiny_checkpoint, whisper, clips["spoken"], "-o", out, "--subtitles", "srt",
                     "--subtitles-from", "speech")  # fmt: skip
    assert result.exit_code == 2 and "--subtitles-from" in result.output and "--speech" in result.output


def test_a_jsonl_mixing_runs_with_and_without_speech_and_older_lines_exports_typed(
    captioned, clips, tiny_checkpoint, whisper, tmp_path
):
    mixed = tmp_path / "mixed.jsonl"
    shutil.copy(captioned, mixed)
    result = caption(tiny_checkpoint, whisper, clips["mute"], "-o", tmp_path / "plain.jsonl")  # speech off
    assert result.exit_code == 0, result.output
    plain = json.loads((tmp_path / "plain.jsonl").read_text().splitlines()[0])
    assert plain["speech"] is None and plain["windows"][0]["speech_text"] is None
    older = json.loads(json.dumps(plain))  # a line written before speech: neither key
    older["id"], older["timings"] = "0" * 64, {k: v for k, v in plain["timings"].items() if k != "speech"}
    del older["speech"]
    for window in older["windows"]:
        del window["speech_text"]
    with mixed.open("a", encoding="utf-8") as out:
        out.write(json.dumps(plain) + "\n" + json.dumps(older) + "\n")
    result = CliRunner().invoke(
        cli, ["export", str(mixed), str(tmp_path / "out"), "--to", "parquet", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    clips_table = pq.read_table(next((tmp_path / "out").rglob("clips*.parquet")))
    windows = pq.read_table(next((tmp_path / "out").rglob("windows*.parquet")))
    assert clips_table.schema.field("speech_segments").type == pa.list_(SEGMENT)
    assert clips_table.schema.field("speech_language").type == "string"
    assert windows.schema.field("speech_text").type == "string"
    rows = {Path(row["path"]).stem: row for row in clips_table.to_pylist()}
    assert rows["spoken"]["speech_segments"] and rows["damaged"]["speech_error"]["type"] == "audio_error"
    texts = windows.column("speech_text").to_pylist()
    assert texts.count(None) == 6 and any(texts)  # the two runs without speech: 3 windows each
    datasets = pytest.importorskip("datasets")  # runs with and without speech, as `datasets` reads the JSONL
    runs = tmp_path / "runs.jsonl"
    runs.write_text(
        "".join(mixed.read_text(encoding="utf-8").splitlines(keepends=True)[:5]), encoding="utf-8"
    )
    table = datasets.load_dataset("json", data_files=str(runs), split="train", cache_dir=str(tmp_path / "hf"))
    segment = table.features["speech"]["segments"].feature
    assert (segment["start"], segment["text"]) == (datasets.Value("float64"), datasets.Value("string"))
    assert table.features["windows"].feature["speech_text"] == datasets.Value("string")
    assert table["speech"].count(None) == 1 and len(table) == 5


def test_transcription_runs_once_per_clip_whatever_the_windows_and_prompts(
    clips, tiny_model, transcribing, prompts
):
    questions = {"what": Question("What happens?"), "who": Question("Who is there?")}
    sampling = SamplingOptions(max_frames=4, window_seconds=3).for_frame_side(tiny_model.frame_side)
    job = CaptionJob(ModelOptions(str(tiny_model.model_id)), questions, sampling, EXACT,
                     speech=SpeechOptions(mode="prompt"))  # fmt: skip
    before_clips, before_calls = transcribing.clips, transcribing.model.calls
    (record,) = caption_clips(tiny_model, job, [str(clips["spoken"])], transcribing=transcribing)
    assert len(record.windows) == 3 and transcribing.clips - before_clips == 1
    assert transcribing.model.calls - before_calls == 1  # its one voiced span, one generate call
    # --speech prompt: each spoken window's transcript comes before the question, as user text
    decode = tiny_model.processor.tokenizer.decode
    asked = [decode(ids) for ids in prompts]
    assert len(asked) == 6
    for number, window in enumerate(record.windows):
        for question, text in zip(questions.values(), asked[2 * number : 2 * number + 2], strict=True):
            if window.speech_text:
                said = text.index(f'What is said in this part: "{window.speech_text}"')
                assert said < text.index(question.text)
            else:
                assert "What is said" not in text


def test_a_transcript_before_the_question_keeps_parity_with_transformers(clips, tiny_model, transcribing):
    transcript = transcribing.transcribe(clips["spoken"])
    said = transcript.text_between(0, 9)
    assert said
    video = sample_video(clips["spoken"], SamplingOptions(max_frames=4).for_frame_side(tiny_model.frame_side))
    messages = chat(speech_question("Describe this video.", said), video)
    expected = reference_tokens(tiny_model, messages, EXACT)
    (answer,) = generate(tiny_model, [messages], EXACT)
    assert answer == tiny_model.processor.tokenizer.decode(expected.new, skip_special_tokens=True).strip()


def test_speech_options_are_checked():
    with pytest.raises(OptionsError) as error:
        SpeechOptions(mode="loud")
    assert error.value.option == "mode"
    with pytest.raises(OptionsError) as error:
        SpeechOptions(language="english please")
    assert error.value.option == "language"
    assert SpeechOptions(speech_model="auto").model_id("cuda") == "openai/whisper-large-v3-turbo"
    assert SpeechOptions().model_id("cpu") == "openai/whisper-small"


def test_cues_from_a_record_without_speech_are_its_captions(captioned):
    from smolvlm_video.batch.records import CaptionRecord

    record = CaptionRecord.from_dict(records(captioned)["mute"])
    record.speech = None
    assert len(cues(record, "both")) == len(cues(record, "captions")) == 3


def test_the_ray_engine_transcribes_each_clip_once_before_its_windows(
    clips, tiny_checkpoint, whisper, tmp_path
):
    pytest.importorskip("ray.data")
    out = tmp_path / "ray.jsonl"
    command = [sys.executable, "-m", "smolvlm_video", "caption", str(clips["spoken"]), str(clips["damaged"]),
               "-o", str(out), "--model", str(tiny_checkpoint), "--max-new-tokens", "4", "--quiet",
               "--window-seconds", "3", "--speech", "record", "--speech-model", str(whisper),
               "--engine", "ray", "--engine-option", "concurrency=1"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    by_name = records(out)
    start, end = spoken_span(clips)
    spoken = by_name["spoken"]
    assert spoken["speech"]["segments"] and spoken["speech"]["error"] is None
    assert all(start - 0.5 <= s["start"] <= s["end"] <= end + 0.5 for s in spoken["speech"]["segments"])
    assert [bool(w["speech_text"]) for w in spoken["windows"]] == [False, True, True]
    assert by_name["damaged"]["speech"]["error"]["type"] == "audio_error" and by_name["damaged"]["windows"]


def test_ask_prints_what_was_said_and_asks_with_it(clips, tiny_checkpoint, whisper, prompts):
    base = ["ask", str(clips["spoken"]), "What happens?", "--model", str(tiny_checkpoint),
            "--max-new-tokens", "4", "--speech-model", str(whisper)]  # fmt: skip
    result = CliRunner().invoke(cli, [*base, "--speech", "prompt"])
    assert result.exit_code == 0, result.output
    assert "[00:03-" in result.stderr  # the spoken segment, timed
    text = AutoTokenizer.from_pretrained(tiny_checkpoint).decode(prompts[-1])
    assert text.index('What is said in this part: "') < text.index("What happens?")
    image = clips["spoken"].parent / "frame.png"
    ffmpeg("-i", str(clips["spoken"]), "-frames:v", "1", str(image))
    refused = CliRunner().invoke(cli, [*base[:1], str(image), *base[2:], "--speech", "record"])
    assert refused.exit_code == 2 and "needs a video" in refused.output


def test_the_server_puts_a_videos_transcript_before_the_question(
    clips, tiny_model, whisper, tmp_path, prompts
):
    openai = pytest.importorskip("openai")
    pytest.importorskip("uvicorn")
    from test_server import KEY, serving

    shutil.copy(clips["spoken"], tmp_path / "spoken.mp4")
    video = {"type": "video_url", "video_url": {"url": str(tmp_path / "spoken.mp4")}}
    messages = [{"role": "user", "content": [video, {"type": "text", "text": "What happens?"}]}]
    with serving(tiny_model, tmp_path, speech=SpeechOptions(speech_model=str(whisper))) as running:
        client = openai.OpenAI(base_url=f"{running['url']}/v1", api_key=KEY, max_retries=0, timeout=120)
        plain = client.chat.completions.create(model="tiny", messages=messages, max_tokens=4)
        heard = client.chat.completions.create(
            model="tiny", messages=messages, max_tokens=4, extra_body={"speech": "prompt"}
        )
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model="tiny", messages=messages, extra_body={"speech": "loud"})
    assert heard.usage.prompt_tokens > plain.usage.prompt_tokens
    decode = tiny_model.processor.tokenizer.decode
    assert "What is said" not in decode(prompts[0])
    text = decode(prompts[1])
    assert text.index('What is said in this part: "') < text.index("What happens?")
    assert refused.value.body["param"] == "speech"


@pytest.fixture(scope="module")
def demo(tiny_checkpoint, whisper):
    pytest.importorskip("gradio")
    from demo_server import served
    from smolvlm_video.demo import DemoConfig

    model = str(tiny_checkpoint)
    config = DemoConfig(model=model, models=(model,), device="cpu", max_frames=4, max_new_tokens=4,
                        speech_model=str(whisper))  # fmt: skip
    with served(config) as url:
        yield config, url


def test_the_demos_chat_listens_and_shows_what_was_said(demo, clips, prompts, tiny_model):
    from gradio_client import Client, handle_file

    config, url = demo
    client = Client(url, verbose=False)
    message = {"text": "What happens?", "files": [handle_file(clips["spoken"])]}
    settings = [config.model, 4, 1.0, 0, 0, 4, 0, ""]  # as callers written before Listen send them
    _, _, deaf = client.predict(message, None, *settings, api_name="/chat")
    _, _, heard = client.predict(message, None, *settings, True, api_name="/chat")
    assert "Said from 00:00 to 00:09" in heard and "Said from" not in deaf
    decode = tiny_model.processor.tokenizer.decode
    assert "What is said" not in decode(prompts[-2]) and "What is said in this part" in decode(prompts[-1])


def test_a_follow_up_hears_the_chats_earlier_video_without_transcribing_it_again(
    demo, clips, prompts, tiny_model
):
    from smolvlm_video.demo.chat import user_turn
    from smolvlm_video.demo.handlers import Handlers
    from smolvlm_video.demo.settings import Settings

    config, _ = demo
    handlers = Handlers(config)
    upload = handlers.allowed[0] / "listen-follow-up" / "spoken.mp4"  # as if uploaded
    upload.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(clips["spoken"], upload)
    settings = Settings(config.model, 4, 1.0, 0, 0, 4, 0, "", True)
    first = {"text": "What happens?", "files": [str(upload)]}
    answer = list(handlers.chat(first, [], settings=settings))[-1][0]
    history = [user_turn(first), {"role": "assistant", "content": answer}]
    _, _, heard = list(handlers.chat({"text": "And then?", "files": []}, history, settings=settings))[-1]
    model = handlers.models.get(config.model_options(config.model))
    assert handlers.models.speech(config.speech_options(True), model).clips == 1  # the kept transcript
    assert "Said from 00:00 to 00:09" in heard
    follow_up = tiny_model.processor.tokenizer.decode(prompts[-1])
    assert follow_up.index('What is said in this part: "') < follow_up.index("What happens?")
    assert follow_up.index("What happens?") < follow_up.index("And then?")


def test_kept_transcripts_are_bounded_and_a_changed_or_gone_file_is_heard_again(tmp_path):
    pytest.importorskip("gradio")
    from smolvlm_video.demo.models import TranscriptCache

    files = [tmp_path / f"clip{number}.mp4" for number in range(3)]
    for file in files:
        file.write_bytes(b"video")
    asked: list[list] = []

    def transcribe(spans):
        asked.append(spans)
        return [Transcript(language=f"{path[-5]}{start}") for path, start, _ in spans]

    kept, options = TranscriptCache(keep=2), SpeechOptions(mode="prompt")
    spans = [(str(file), 0.0, 9.0) for file in files]
    assert [t.language for t in kept.heard(options, spans[:2], transcribe)] == ["00.0", "10.0"]
    assert [t.language for t in kept.heard(options, spans[:2], transcribe)] == ["00.0", "10.0"]
    assert len(asked) == 1  # both kept
    kept.heard(options, spans[2:], transcribe)  # the least recently used, clip0, goes
    kept.heard(options, spans[:1], transcribe)
    assert len(kept) == 2 and len(asked) == 3 and asked[-1] == spans[:1]
    kept.heard(options, spans[:1], transcribe)
    assert len(asked) == 3  # kept again
    files[0].write_bytes(b"another video")  # a new upload under the same name
    kept.heard(options, spans[:1], transcribe)
    assert len(asked) == 4 and asked[-1] == spans[:1]
    kept.heard(SpeechOptions(mode="prompt", language="fr"), spans[:1], transcribe)  # heard in another way
    assert len(asked) == 5 and asked[-1] == spans[:1]
    gone = (str(tmp_path / "gone.mp4"), 0.0, 9.0)  # deleted since it was read: heard each time, not kept
    kept.heard(options, [gone], transcribe)
    kept.heard(options, [gone], transcribe)
    assert len(asked) == 7 and asked[-1] == [gone] and len(kept) == 2


def test_the_demos_timeline_shows_what_was_said_under_each_shot(demo, clips):
    pytest.importorskip("scenedetect")
    from gradio_client import Client, handle_file

    config, url = demo
    settings = [config.model, 4, 1.0, 0, 0, 4, 0, "", True]
    timeline, record, _ = Client(url, verbose=False).predict(
        handle_file(clips["spoken"]), "", "scenes", None, *settings, api_name="/analyze"
    )
    written = json.loads(record)
    assert [bool(w["speech_text"]) for w in written["windows"]] == [False, True, True]
    assert written["speech"]["segments"] and timeline.count('class="speech"') == 3
    assert "Nothing is said." in timeline and "Said: \u201c" in timeline


def test_zerogpu_reserves_time_for_listening(clips):
    from smolvlm_video.demo.zerogpu import analysis_seconds, speech_seconds

    from smolvlm_video.batch.prefetch import plan_clip

    job = CaptionJob(sampling=SamplingOptions(window_seconds=3))
    clip = plan_clip(str(clips["spoken"]), job.sampling)
    listening = CaptionJob(sampling=job.sampling, speech=SpeechOptions(mode="prompt"))
    deaf, heard = analysis_seconds("256M", job, clip, 1000), analysis_seconds("256M", listening, clip, 1000)
    assert heard == deaf + speech_seconds(9.0, 1000)
    assert speech_seconds(600.0, 1000) > speech_seconds(60.0, 1000)
