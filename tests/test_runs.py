"""The run API on the tiny checkpoint: windows streamed with bounded look-ahead, failures kept to their clip,
out-of-memory back-off, summaries that fail softly, resume and shards from Python."""

from __future__ import annotations

import json
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from click.testing import CliRunner
from conftest import requires_ffmpeg
from smolvlm_video.cli.main import cli

from smolvlm_video.batch import captioning, engines, prefetch, sinks
from smolvlm_video.batch.captioning import CaptionJob
from smolvlm_video.batch.records import CaptionRecord, WindowCaption, read_records, safe_clip_id
from smolvlm_video.batch.runs import Captioning, CaptionRun, Shard, plan_run
from smolvlm_video.errors import OptionsError, OutputError
from smolvlm_video.model import media
from smolvlm_video.model.loading import LoadedModel
from smolvlm_video.options import GenerationOptions, ModelOptions, SamplingOptions

pytestmark = [requires_ffmpeg]


class FailingVLM:
    """The tiny model, failing as a real one can: `fail(...)` returns the error to raise, or None."""

    def __init__(self, vlm: Any, fail: Any) -> None:
        self._vlm = vlm
        self._fail = fail

    def __getattr__(self, name: str) -> Any:
        return getattr(self._vlm, name)

    def get_image_features(self, pixel_values: torch.Tensor, **kwargs: Any) -> Any:
        if error := self._fail(pixel_values=pixel_values):
            raise error
        return self._vlm.get_image_features(pixel_values=pixel_values, **kwargs)

    def generate(self, **kwargs: Any) -> Any:
        if error := self._fail(inputs_embeds=kwargs["inputs_embeds"]):
            raise error
        return self._vlm.generate(**kwargs)


def failing(model: LoadedModel, fail: Any) -> LoadedModel:
    return LoadedModel(
        FailingVLM(model.model, fail), model.processor, model.model_id, None, model.device, model.dtype
    )


@pytest.fixture
def clips(tmp_path, make_video) -> Path:
    """Four clips: three of 3 s (3 frames each) and one of 6 s (6 frames)."""
    root = tmp_path / "clips"
    root.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(make_video("three.mp4", size="64x48"), root / f"{name}.mp4")
    shutil.copy(make_video("six.mp4", size="64x48", seconds=6), root / "six.mp4")
    return root


def job(checkpoint: Path, **fields: Any) -> CaptionJob:
    fields.setdefault("generation", GenerationOptions(max_new_tokens=3))
    return CaptionJob(model=ModelOptions(str(checkpoint), device="cpu"), **fields)


def test_prefetch_holds_a_bounded_number_of_windows_whatever_the_length(make_video, monkeypatch):
    long_clip = make_video("thirty.mp4", size="64x48", rate=5, seconds=30)
    sampling = SamplingOptions(fps=2, max_frames=2, window_seconds=1.0, frame_side=32)
    decoded = []
    real = prefetch.decode_window
    monkeypatch.setattr(prefetch, "decode_window", lambda *a: decoded.append(1) or real(*a))
    consumed, most_ahead = 0, 0
    for window in prefetch.prefetch_windows([str(long_clip)] * 2, sampling, workers=2):
        time.sleep(0.01)  # a slow model: the decoders could run far ahead if nothing held them back
        consumed += 1
        most_ahead = max(most_ahead, len(decoded) - consumed)
        assert window.video is not None and window.video.frame_count == 2
    assert consumed == 60  # 30 windows of each clip, in order
    assert most_ahead <= prefetch.LOOKAHEAD_PER_WORKER * 2


@pytest.mark.slow
def test_a_model_error_fails_only_its_clip(tiny_model, tiny_checkpoint, clips, tmp_path):
    def fail(pixel_values=None, **_: Any) -> Exception | None:
        if pixel_values is not None and pixel_values.shape[1] == 6:  # the 6-frame clip's chat
            return RuntimeError("CUDA error: device-side assert triggered")
        return None

    run = CaptionRun((str(clips),), tmp_path / "out.jsonl", job(tiny_checkpoint, batch_size=4))
    records = {Path(r.path).name: r for r in Captioning(run, model=failing(tiny_model, fail))}
    assert [n for n, r in records.items() if r.status == "ok"] == ["a.mp4", "b.mp4", "c.mp4"]
    assert records["six.mp4"].error["type"] == "generation"
    assert "RuntimeError: CUDA error: device-side assert triggered" in records["six.mp4"].error["message"]

    again = list(Captioning(run, model=tiny_model))  # a rerun retries the failed clip alone
    assert [(Path(r.path).name, r.status) for r in again] == [("six.mp4", "ok")]


@pytest.mark.slow
def test_out_of_memory_halves_the_batch_for_the_rest_of_the_run(tiny_model, tiny_checkpoint, clips, tmp_path):
    def fail(inputs_embeds=None, **_: Any) -> Exception | None:
        if inputs_embeds is not None and inputs_embeds.shape[0] > 1:
            return torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return None

    run = CaptionRun((str(clips),), tmp_path / "out.jsonl", job(tiny_checkpoint, batch_size=4))
    captioning = Captioning(run, model=failing(tiny_model, fail))
    assert all(r.status == "ok" for r in captioning) and captioning.stats.batch_size == 1

    def always(**_: Any) -> Exception:
        return RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")

    captioning = Captioning(
        CaptionRun((str(clips / "a.mp4"),), tmp_path / "oom.jsonl", job(tiny_checkpoint)),
        model=failing(tiny_model, always),
    )
    (record,) = captioning
    assert record.error["type"] == "out_of_memory" and "max-frames" in record.error["message"]


@pytest.mark.slow
def test_windows_prepared_on_the_decoding_threads_give_the_same_records(
    tiny_model, tiny_checkpoint, clips, tmp_path, monkeypatch, caplog
):
    def captions(name: str) -> dict[str, Any]:
        run = CaptionRun((str(clips),), tmp_path / name, job(tiny_checkpoint, batch_size=2))
        return {Path(r.path).name: (r.status, r.caption) for r in Captioning(run, model=tiny_model)}

    made_on: list[str] = []  # the thread that ran the processor, for each video
    real_pixels = media.video_pixels
    monkeypatch.setattr(
        media, "video_pixels", lambda *a: made_on.append(threading.current_thread().name) or real_pixels(*a)
    )
    plain = captions("plain.jsonl")
    assert set(made_on) == {"MainThread"}

    def prepare(video: Any) -> Any:
        if video.frame_count == 6:
            raise ValueError("frames the processor refuses")
        return media.prepare_video(tiny_model.processor, video, tiny_model.dtype, pin=False)

    made_on.clear()
    monkeypatch.setattr(captioning, "preparer", lambda model: prepare)
    assert captions("prepared.jsonl") == plain  # six.mp4 too: prepared again when it is answered
    assert made_on.count("MainThread") == 1 and len(made_on) == 4
    assert all(name.startswith("smolvlm-decode") for name in made_on if name != "MainThread")
    assert "Could not prepare window 0 of" in caplog.text and "ValueError" in caplog.text


@pytest.mark.slow
def test_a_failed_summary_keeps_the_window_captions(
    tiny_model, tiny_checkpoint, clips, tmp_path, monkeypatch
):
    from smolvlm_video.batch import answering as batching

    real = batching.answer_chats

    def no_text_only(model, chats, options, **kwargs):
        if not any(part for chat in chats for message in chat for part in message.media()):
            raise ValueError("the summary prompt is longer than the context")
        return real(model, chats, options)

    monkeypatch.setattr(batching, "answer_chats", no_text_only)
    sampling = SamplingOptions(window_seconds=3.0)
    run = CaptionRun(
        (str(clips / "six.mp4"),),
        tmp_path / "out.jsonl",
        job(tiny_checkpoint, sampling=sampling, summarize=True),
    )
    (record,) = Captioning(run, model=tiny_model)
    assert record.status == "ok" and len(record.windows) == 2 and not record.summarized
    assert record.caption == "\n".join(s.caption for s in record.windows)
    assert (
        record.summary_error["type"] == "generation"
        and "longer than the context" in record.summary_error["message"]
    )


@pytest.mark.slow
def test_resume_and_shards_from_python(tiny_model, tiny_checkpoint, clips, tmp_path):
    base = CaptionRun((str(clips),), tmp_path / "out.jsonl", job(tiny_checkpoint))
    halves = [CaptionRun(base.inputs, base.output, base.job, shard=Shard(i, 2)) for i in range(2)]
    planned = [plan_run(half).todo for half in halves]
    assert sorted(planned[0] + planned[1]) == sorted(str(p) for p in clips.iterdir())
    first = list(Captioning(halves[0], model=tiny_model))
    assert len(first) == len(planned[0])
    assert plan_run(base).todo == planned[1]  # the first shard's clips are done
    assert len(list(Captioning(base, model=tiny_model))) == len(planned[1])
    assert plan_run(base).todo == () and len(list(read_records(base.output))) == 4


def test_bad_runs_are_refused_before_any_work(tmp_path):
    with pytest.raises(OptionsError, match="URIs are not read directly") as error:
        CaptionRun(("s3://bucket/clips",), tmp_path / "out.jsonl")
    assert error.value.option == "inputs"
    with pytest.raises(OptionsError, match="I must be between"):
        Shard.parse("4/4")
    with pytest.raises(OutputError, match="does not exist"):
        plan_run(CaptionRun((str(tmp_path),), tmp_path / "missing" / "out.jsonl"))
    with pytest.raises(OptionsError, match="cannot read this list") as error:
        plan_run(CaptionRun((str(tmp_path / "nope.txt"),), tmp_path / "out.jsonl", from_list=True))


def test_a_written_record_reaches_the_disk_within_two_seconds(tmp_path, monkeypatch):
    from smolvlm_video.batch import records

    synced = threading.Event()
    real_fsync = records.os.fsync
    monkeypatch.setattr(records.os, "fsync", lambda fd: (real_fsync(fd), synced.set()))
    with records.JsonlWriter(tmp_path / "out.jsonl") as writer:
        synced.clear()
        writer.write(records.CaptionRecord(path="a", abs_path="/a", id="1", status="ok"))
        assert synced.wait(records.FSYNC_EVERY_SECONDS + 1.0)  # no second record comes to trigger it


def test_windows_answered_out_of_order_make_an_ordered_record(make_video):
    from smolvlm_video.batch.captioning import ClipCaptions

    sampling = SamplingOptions(window_seconds=3.0, frame_side=32)
    clip = prefetch.plan_clip(str(make_video("six.mp4", size="64x48", seconds=6)), sampling)
    whole = ClipCaptions(clip)
    for position, text in ((1, "second"), (0, "first")):  # as two Ray actors may hand them back
        part = ClipCaptions(clip)
        part.add(prefetch.decode_window(clip, position, sampling, threads=1), {"caption": text}, 0.1, 0.2)
        whole.merge(part)
    record = whole.record(CaptionJob())
    assert record.caption == "first\nsecond"
    assert (record.timings["encode"], record.timings["generate"]) == (0.2, 0.4)  # both windows' seconds
    assert [s.start for s in record.windows] == [0.0, 3.0]


class MemorySink:
    """A sink that keeps records in a list: what a new output format has to provide."""

    kept: ClassVar[list[Any]] = []

    def __init__(self, path: Any) -> None:
        self.path = path

    @staticmethod
    def done_ids(path: Any, retry_errors: bool = True) -> set[str]:
        return {record.id for record in MemorySink.kept if record.status == "ok"}

    @staticmethod
    def read(path: Any) -> Any:
        return ((n, json.loads(record.to_json())) for n, record in enumerate(MemorySink.kept, start=1))

    def write(self, record: Any) -> None:
        MemorySink.kept.append(record)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> MemorySink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class ListOptions:
    """The listing engine's own options."""

    prefix: str = ""
    repeat: int = 1


class ListEngine:
    """An engine that answers every clip with its path: what a new engine has to provide."""

    Options = ListOptions

    def __init__(self, options: ListOptions, model: Any = None) -> None:
        self.options = options

    def records(self, job, paths, ready, batch_size):
        ready()
        for path in paths:
            batch_size(1)
            caption = self.options.prefix + path * self.options.repeat
            window = WindowCaption(0.0, 1.0, caption, 1, [0.0], {"caption": caption})
            yield CaptionRecord(path, path, safe_clip_id(path), "ok", caption=caption, windows=[window])


def test_a_new_sink_and_a_new_engine_are_one_class_and_one_line_each(clips, tmp_path, monkeypatch):
    monkeypatch.setitem(sinks.SINKS, "memory", MemorySink)
    monkeypatch.setitem(engines.ENGINES, "listing", ListEngine)
    monkeypatch.setattr(MemorySink, "kept", [])
    flags = ["--sink", "memory", "--engine", "listing", "--engine-option", "prefix=seen: "]
    result = CliRunner().invoke(cli, ["caption", str(clips), "-o", str(tmp_path / "unused"), *flags])
    assert result.exit_code == 0, result.output
    paths = sorted(str(p) for p in clips.glob("*.mp4"))
    assert [record.caption for record in MemorySink.kept] == [f"seen: {p}" for p in paths]
    run = CaptionRun((str(clips),), tmp_path / "unused", CaptionJob(), sink="memory", engine="listing")
    assert plan_run(run).todo == ()  # resume asks the sink which clips it holds
    assert run.engine_options == ListOptions()

    result = CliRunner().invoke(cli, ["caption", str(clips), *flags[:4], "--engine-option", "repeat=two"])
    assert result.exit_code == 2 and "--engine-option" in result.output, result.output
    assert "repeat must be a whole number, got 'two'" in result.output

    pytest.importorskip("pyarrow")
    exported = tmp_path / "exported"
    args = ["export", "unused", str(exported), "--sink", "memory", "--to", "parquet"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    import pyarrow.parquet as pq

    assert [row["caption"] for row in pq.read_table(exported / "windows.parquet").to_pylist()] == [
        f"seen: {p}" for p in paths
    ]
