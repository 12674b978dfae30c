"""`export`: caption records to Parquet, a Hugging Face dataset folder and WebDataset shards, and each window
cut into a clip of its own, on real files: a clip made so that its shots start between keyframes."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tarfile
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import ffmpeg, requires_ffmpeg
from conftest import testsrc as pattern_input
from smolvlm_video.cli.main import cli

from smolvlm_video.errors import RecordsError
from smolvlm_video.export.answers import schema_column
from smolvlm_video.export.cutting import Span, cut_spans
from smolvlm_video.export.exporting import export
from smolvlm_video.export.options import CutOptions, ExportOptions
from smolvlm_video.video.probe import probe

pytestmark = [requires_ffmpeg]

ROOT = Path(__file__).resolve().parent.parent
SCENE_SCHEMA = ROOT / "examples" / "schemas" / "scene.json"
SHOT_SECONDS = 2.5
# A keyframe every 1.4 s at 25 fps (0, 1.4, 2.8, 4.2 and 5.6 s): the cuts, at 2.5 s and 5 s, fall between two.
GOP = 35


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    """7.5 s at 25 fps with B-frames: three shots of 2.5 s, each moving (a test pattern, a Mandelbrot zoom,
    the game of life), with a tone for audio; a long GOP, no keyframe forced at a cut (-sc_threshold 0)."""
    path = tmp_path_factory.mktemp("shots") / "shots.mp4"
    sources = [
        "testsrc2=size=320x240:rate=25",
        "mandelbrot=size=320x240:rate=25",
        "life=size=320x240:rate=25:mold=10",
    ]
    inputs = [arg for source in sources for arg in ("-f", "lavfi", "-t", str(SHOT_SECONDS), "-i", source)]
    inputs += ["-f", "lavfi", "-t", str(3 * SHOT_SECONDS), "-i", "sine=frequency=440:sample_rate=44100"]
    joined = "[0:v][1:v][2:v]concat=n=3:v=1:a=0,format=yuv420p[v]"
    encode = ["-c:v", "libx264", "-preset", "veryfast", "-g", str(GOP), "-sc_threshold", "0", "-c:a", "aac"]
    ffmpeg(*inputs, "-filter_complex", joined, "-map", "[v]", "-map", "3:a", *encode, str(path))
    return path


@pytest.fixture(scope="module")
def captioned(tmp_path_factory, shots, tiny_checkpoint) -> Path:
    """`caption --split scenes` over the shots clip, another example clip and one unreadable file."""
    folder = tmp_path_factory.mktemp("captioned")
    clips = folder / "clips"
    clips.mkdir()
    shutil.copy(shots, clips / "shots.mp4")
    shutil.copy(ROOT / "examples" / "clips" / "testsrc2.mp4", clips / "testsrc2.mp4")
    (clips / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    out = folder / "captions.jsonl"
    result = run("caption", clips, "-o", out, "--split", "scenes", "--model", tiny_checkpoint,
                 "--max-new-tokens", "4", "--quiet")  # fmt: skip
    assert result.exit_code == 1, result.output  # the broken file
    return out


@pytest.fixture(scope="module")
def hf_export(captioned, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("export") / "dataset"
    result = run("export", captioned, folder, "--to", "hf", "--clips", "--quiet")
    assert result.exit_code == 0, result.output
    return folder


def frames_of(path: Path) -> list[tuple[float, np.ndarray]]:
    with av.open(str(path)) as container:
        return [
            (float(f.time), f.to_ndarray(format="rgb24").astype(np.int16)) for f in container.decode(video=0)
        ]


def keyframe_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(f.time) for f in container.decode(video=0) if f.key_frame]


@pytest.mark.slow
def test_hf_export_loads_with_datasets_one_row_per_window_and_per_record(captioned, hf_export):
    datasets = pytest.importorskip("datasets")
    records = lines(captioned)
    ok = [r for r in records if r["status"] == "ok"]
    windows = datasets.load_dataset(str(hf_export), "windows", split="train")
    clips = datasets.load_dataset(str(hf_export), "clips", split="train")
    assert len(windows) == sum(len(r["windows"]) for r in ok)
    assert len(clips) == len(records) == 3
    shots = next(r for r in ok if r["path"].endswith("shots.mp4"))
    starts = [w["start"] for w in shots["windows"]]
    assert len(starts) == 3 and all(abs(a - b) < 0.2 for a, b in zip(starts, (0, 2.5, 5), strict=True)), (
        starts
    )
    assert sorted(clips["status"]) == ["error", "ok", "ok"]
    assert [t for t in clips["error_type"] if t] == ["corrupt"]
    assert isinstance(windows.features["cut_path"], datasets.Video)  # the Hub's viewer plays it
    files = windows.cast_column("cut_path", datasets.Video(decode=False))["cut_path"]
    assert all(
        clip["bytes"] is None and (hf_export / clip["path"]).is_file() and not error
        for clip, error in zip(files, windows["cut_error_type"], strict=True)
    )
    card = (hf_export / "README.md").read_text()
    assert "config_name: windows" in card and "hf upload" in card and "corrupt: 1" in card


@pytest.mark.slow
def test_each_cut_clip_is_its_window_exactly_from_the_frame_at_its_start_with_audio(
    captioned, hf_export, shots
):
    pq_windows = pq.read_table(hf_export / "data" / "windows").to_pylist()
    source = frames_of(shots)
    keyframes = keyframe_times(shots)
    fps = 25
    for window in [w for w in pq_windows if w["path"].endswith("shots.mp4")]:
        start, end = window["start"], window["end"]
        if start > 0:
            assert start not in keyframes  # the cut falls between keyframes
        clip = hf_export / window["cut_path"]["path"]
        frames = frames_of(clip)
        assert abs(len(frames) / fps - (end - start)) <= 1 / fps
        # Of the source's frames around the start, the cut's first frame is the one at the start: not the
        # frame before it (the last of the previous shot), nor one after it.
        first = frames[0][1]
        near = [
            (time, np.abs(first - image).mean()) for time, image in source if abs(time - start) < 2.5 / fps
        ]
        closest, difference = min(near, key=lambda pair: pair[1])
        assert abs(closest - start) < 0.5 / fps and difference < 10, near
        with av.open(str(clip)) as container:
            audio = container.streams.audio[0]
            samples = sum(frame.samples for frame in container.decode(audio))
        assert abs(samples / audio.sample_rate - (end - start)) < 0.05


@pytest.mark.slow
def test_a_rerun_replaces_the_tables_and_reuses_the_cut_clips(captioned, hf_export, tmp_path):
    folder = tmp_path / "again"
    shutil.copytree(hf_export, folder)
    before = {p: p.stat().st_mtime_ns for p in (folder / "cuts").rglob("*.mp4")}
    (folder / "data" / "windows" / "stale.parquet").write_bytes(b"from an older export")
    report = export(captioned, folder, ExportOptions(format="hf", cut=CutOptions()))
    assert report.cuts == {"reused": len(before)}
    assert {p: p.stat().st_mtime_ns for p in (folder / "cuts").rglob("*.mp4")} == before
    assert not (folder / "data" / "windows" / "stale.parquet").exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(".export")]


@pytest.mark.slow
def test_copy_cuts_start_at_the_keyframe_before_the_window(captioned, tmp_path, shots):
    report = export(
        captioned, tmp_path / "copy", ExportOptions(format="parquet", cut=CutOptions(mode="copy"))
    )
    assert report.cut_failures == 0
    rows = pq.read_table(tmp_path / "copy" / "windows.parquet").to_pylist()
    second = sorted((w for w in rows if w["path"].endswith("shots.mp4")), key=lambda w: w["start"])[1]
    frames = frames_of(tmp_path / "copy" / second["cut_path"]["path"])
    keyframe = max(t for t in keyframe_times(shots) if t <= second["start"])  # 1.4 s
    assert abs(len(frames) / 25 - (second["end"] - keyframe)) <= 2 / 25


@pytest.mark.slow
def test_json_schema_answers_are_typed_columns(tmp_path, tiny_checkpoint):
    out = tmp_path / "scene.jsonl"
    clip = ROOT / "examples" / "clips" / "testsrc2.mp4"
    result = run("caption", clip, "-o", out, "--model", tiny_checkpoint, "--json-schema", SCENE_SCHEMA,
                 "--max-new-tokens", "200", "--window-seconds", "3", "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    export(out, tmp_path / "ds", ExportOptions(format="hf"))
    table = pq.read_table(tmp_path / "ds" / "data" / "windows")
    scene = table.schema.field("answers").type.field("caption").type
    assert scene.field("people").type == pa.bool_()
    assert scene.field("setting").type == pa.string()
    assert scene.field("tags").type == pa.list_(pa.string())
    datasets = pytest.importorskip("datasets")
    features = datasets.load_dataset(str(tmp_path / "ds"), "windows", split="train").features
    typed = features["answers"]["caption"]
    assert typed["people"] == datasets.Value("bool") and typed["setting"] == datasets.Value("string")
    assert typed["tags"] == datasets.List(datasets.Value("string"))
    rows = table.to_pylist()
    assert len(rows) == 2 and all(isinstance(r["answers"]["caption"]["people"], bool) for r in rows)


@pytest.mark.slow
def test_a_mix_of_runs_is_one_type_per_column_with_no_json_columns(captioned, tmp_path, tiny_checkpoint):
    prompts = tmp_path / "prompts.json"
    tags = {"type": "array", "items": {"enum": ["car", "sky", "text"]}, "maxItems": 2}
    prompts.write_text(json.dumps({"short": "One line.", "tags": {"prompt": "Tags?", "schema": tags}}))
    mixed = tmp_path / "mixed.jsonl"
    shutil.copy(captioned, mixed)
    clip = ROOT / "examples" / "clips" / "mandelbrot.mp4"
    result = run("caption", clip, "-o", mixed, "--model", tiny_checkpoint, "--prompt-file", prompts,
                 "--max-new-tokens", "40", "--window-seconds", "4", "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = export(mixed, tmp_path / "ds", ExportOptions(format="hf"))
    assert report.counts.records == 4 and report.counts.ok == 3
    datasets = pytest.importorskip("datasets")
    windows = datasets.load_dataset(str(tmp_path / "ds"), "windows", split="train")
    clips = datasets.load_dataset(str(tmp_path / "ds"), "clips", split="train")
    answers = windows.features["answers"]
    assert answers["caption"] == datasets.Value("string") and answers["short"] == datasets.Value("string")
    assert answers["tags"] == datasets.List(datasets.Value("string"))
    for features in (windows.features, clips.features):
        assert not _json_features(features)
    assert clips.features["generation_extra"] == datasets.Value("string")  # free-form: JSON text
    mandelbrot = [w for w in windows if w["path"].endswith("mandelbrot.mp4")]
    assert len(mandelbrot) == 2 and all(w["answers"]["caption"] is None for w in mandelbrot)
    assert all(isinstance(w["answers"]["tags"], list) for w in mandelbrot)


def _json_features(features) -> list:
    import datasets

    found = []
    for feature in features.values() if isinstance(features, dict) else [features]:
        if isinstance(feature, datasets.Json):
            found.append(feature)
        elif isinstance(feature, dict):
            found += _json_features(feature)
        elif isinstance(feature, datasets.List):
            found += _json_features(feature.feature)
    return found


@pytest.mark.slow
def test_webdataset_shards_hold_json_text_and_mp4_per_window(captioned, tmp_path):
    folder = tmp_path / "wds"
    result = run("export", captioned, folder, "--to", "webdataset", "--clips", "--quiet")
    assert result.exit_code == 0, result.output
    shards = sorted((folder / "data").glob("*.tar"))
    assert len(shards) == 1 and shards[0].name.endswith("-00000-of-00001.tar")
    with tarfile.open(shards[0]) as tar:
        names = tar.getnames()
    keys = sorted({name.split(".")[0] for name in names})
    assert len(keys) == 4 and sorted(names) == sorted(
        f"{k}.{e}" for k in keys for e in ("json", "txt", "mp4")
    )
    webdataset = pytest.importorskip("webdataset")
    samples = list(webdataset.WebDataset(str(shards[0]), shardshuffle=False))
    assert len(samples) == 4
    document = json.loads(samples[0]["json"])
    assert document["caption"] == samples[0]["txt"].decode() and samples[0]["mp4"][4:8] == b"ftyp"
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset("webdataset", data_files=[str(s) for s in shards], split="train")
    assert len(loaded) == 4 and {"json", "txt", "mp4"} <= set(loaded.column_names)
    plain = loaded.cast_column("mp4", datasets.Video(decode=False))  # no torchcodec needed to read bytes
    assert plain[0]["mp4"]["bytes"][4:8] == b"ftyp"


# --- bad input ---


def test_a_torn_last_line_is_skipped_with_a_warning(captioned, tmp_path, caplog):
    torn = tmp_path / "torn.jsonl"
    torn.write_bytes(captioned.read_bytes() + b'{"path": "half a rec')
    with caplog.at_level(logging.WARNING):
        report = export(torn, tmp_path / "out", ExportOptions(format="parquet"))
    assert report.counts.records == 3
    assert "line 4 is cut short" in caplog.text
    assert pq.read_table(tmp_path / "out" / "clips.parquet").num_rows == 3


@pytest.mark.parametrize(
    ("line", "message"),
    [("not json at all", "line 2: not JSON"), ('["a list"]', "line 2: a JSON list"),
     ('{"id": "x"}', "line 2: not a caption record (no path, status)")],
)  # fmt: skip
def test_a_line_that_is_not_a_record_stops_with_exit_2_and_writes_nothing(captioned, tmp_path, line, message):
    first, *rest = captioned.read_text().splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(first + line + "\n" + "".join(rest))
    folder = tmp_path / "out"
    result = run("export", bad, folder, "--to", "hf")
    assert result.exit_code == 2 and message in result.output, result.output
    assert not folder.exists() or not list(folder.iterdir())
    with pytest.raises(RecordsError, match="line 2"):
        export(bad, folder)


def test_a_failed_rerun_leaves_the_previous_export_as_it_was(captioned, tmp_path):
    folder = tmp_path / "out"
    export(captioned, folder, ExportOptions(format="parquet"))
    before = (folder / "clips.parquet").read_bytes()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(captioned.read_text() + "oops\n" + captioned.read_text())
    with pytest.raises(RecordsError):
        export(bad, folder, ExportOptions(format="parquet"))
    assert (folder / "clips.parquet").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == [
        ".smolvlm-export.json",
        "clips.parquet",
        "windows.parquet",
    ]


@pytest.mark.slow
def test_a_moved_or_changed_source_marks_its_windows_and_the_export_goes_on(captioned, shots, tmp_path):
    records = lines(captioned)
    moved = tmp_path / "moved.jsonl"
    for record in records:
        if record["path"].endswith("shots.mp4"):
            record["abs_path"] = str(tmp_path / "gone" / "shots.mp4")
        elif record["status"] == "ok":
            changed = tmp_path / "changed.mp4"
            shutil.copy(record["abs_path"], changed)
            with open(changed, "ab") as file:
                file.write(b"\0" * 100)  # other content than the file captioned: its fingerprint differs
            record["abs_path"] = str(changed)
    moved.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = run("export", moved, tmp_path / "out", "--to", "parquet", "--clips")
    assert result.exit_code == 1 and "3 not_found" in result.output and "1 changed" in result.output, (
        result.output
    )
    rows = pq.read_table(tmp_path / "out" / "windows.parquet").to_pylist()
    assert {r["cut_error_type"] for r in rows} == {"not_found", "changed"}
    assert all(r["cut_path"] is None and "since it was captioned" in r["cut_error_message"] for r in rows)


@pytest.mark.parametrize(
    ("flag", "value"), [("--clip-codec", "no-such-encoder"), ("--clip-preset", "sluggish")]
)
def test_bad_cut_options_are_refused_up_front_naming_their_flag(captioned, tmp_path, flag, value):
    result = run("export", captioned, tmp_path / "out", "--clips", flag, value)
    assert result.exit_code == 2 and flag in result.output and value in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_an_output_that_cannot_be_written_is_exit_2_with_the_reason(captioned, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run("export", captioned, blocker / "dataset")
    assert result.exit_code == 2 and "Cannot write the export" in result.output, result.output


@pytest.mark.slow
def test_a_clip_retried_after_an_error_is_one_row_its_latest(captioned, tmp_path):
    records = lines(captioned)
    ok = next(r for r in records if r["status"] == "ok")
    failed = {
        **ok,
        "status": "error",
        "windows": [],
        "caption": None,
        "error": {"type": "corrupt", "message": "x"},
    }
    journal = tmp_path / "retried.jsonl"
    journal.write_text("".join(json.dumps(r) + "\n" for r in [failed, *records]))  # the error, then the retry
    report = export(journal, tmp_path / "out", ExportOptions(format="parquet"))
    clips = pq.read_table(tmp_path / "out" / "clips.parquet").to_pylist()
    assert len(clips) == report.counts.records == 3 and report.counts.errors == {"corrupt": 1}
    assert next(c for c in clips if c["id"] == ok["id"])["status"] == "ok"


# --- cutting, alone ---


def test_an_exact_cut_of_a_rotated_phone_video_comes_out_upright(make_video, tmp_path):
    from smolvlm_video import sample_video
    from smolvlm_video.options import SamplingOptions

    plain = make_video("export-plain.mp4", size="160x120", seconds=2)
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    info = probe(rotated)
    assert info.rotation in (90, 270) and (info.width, info.height) == (120, 160)
    target = tmp_path / "cut.mp4"
    assert cut_spans(info, [Span(0.4, 1.2, target)], CutOptions()) == [None]
    with av.open(str(target)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (120, 160)
        assert stream.frames == 20 and stream.average_rate == Fraction(25)
        first = next(container.decode(stream)).to_ndarray(format="rgb24").astype(np.int16)
    # The sampler turns frames upright too: the cut's first frame is the sampler's frame at 0.4 s, not a
    # mirror or the other quarter turn of it.
    upright = sample_video(rotated, SamplingOptions(start=0.4, end=0.44, max_frames=1, frame_side=160))
    sampled = np.asarray(upright.frames[0]).astype(np.int16)
    assert sampled.shape == first.shape and np.abs(sampled - first).mean() < 12
    assert np.abs(np.rot90(sampled, 2) - first).mean() > 40


def test_a_window_past_the_end_fails_in_both_modes_and_audio_shorter_than_video_ends_its_windows(tmp_path):
    video = tmp_path / "short-audio.mp4"
    sources = ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=12"]
    sources += ["-f", "lavfi", "-t", "1", "-i", "sine=sample_rate=16000"]  # audio for the first second only
    ffmpeg(*sources, "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(video))
    info = probe(video)
    spans = [Span(start, start + 3.0, tmp_path / f"{start}.mp4") for start in (0.0, 3.0, 6.0, 9.0, 20.0)]
    errors = cut_spans(info, spans, CutOptions())
    assert errors[:4] == [None] * 4 and errors[4] is not None and "no frame" in str(errors[4])
    copy = cut_spans(info, [Span(20.0, 21.0, tmp_path / "copy-past.mp4")], CutOptions(mode="copy"))
    assert copy[0] is not None and "no frame" in str(copy[0]) and not (tmp_path / "copy-past.mp4").exists()
    assert not list(tmp_path.glob(".*.part"))


def test_a_variable_frame_rate_cut_starts_with_the_frame_on_screen_at_its_start(tmp_path):
    video = tmp_path / "vfr.mp4"  # 25 fps, but no frame from 1 s to 2 s: the frame at 0.96 s stays on screen
    gap = ["-vf", "select='not(between(t,1,2))'", "-fps_mode", "vfr"]
    ffmpeg(*pattern_input("160x120", 25, 4), *gap, "-c:v", "libx264", "-preset", "ultrafast", str(video))
    source = dict(frames_of(video))
    after = min(time for time in source if time > 1.5)  # the first frame after the gap
    spans = [Span(1.5, 3.0, tmp_path / "across.mp4"), Span(1.2, 1.8, tmp_path / "inside.mp4")]
    assert cut_spans(probe(video), spans, CutOptions(crf=10)) == [None, None]
    across = frames_of(spans[0].target)
    assert [round(time, 2) for time, _ in across[:2]] == [0.0, round(after - 1.5, 2)]  # shown from the start
    assert np.abs(across[0][1] - source[0.96]).mean() < 3 and np.abs(across[1][1] - source[after]).mean() < 3
    (only,) = frames_of(spans[1].target)  # a window inside the gap is the held frame alone
    assert np.abs(only[1] - source[0.96]).mean() < 3


def test_part_files_a_killed_export_left_are_deleted_when_their_window_is_cut(make_video, tmp_path):
    import subprocess
    import sys

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    target = tmp_path / "cut.mp4"
    stale = tmp_path / f".cut.mp4.{gone.stdout.strip()}-1.part"  # a process that has ended
    stale.write_bytes(b"half a clip")
    assert cut_spans(
        probe(make_video("export-stale.mp4", seconds=2)), [Span(0.0, 1.0, target)], CutOptions()
    ) == [None]
    assert target.exists() and not stale.exists()


def test_a_stopped_cut_ends_without_leaving_a_partial_file(make_video, tmp_path):
    video = make_video("export-stop.mp4", seconds=2)
    stop = threading.Event()
    stop.set()
    (error,) = cut_spans(probe(video), [Span(0.0, 1.0, tmp_path / "cut.mp4")], CutOptions(), stop)
    assert error is not None and error.code == "cut_failed" and "stopped" in str(error)
    assert list(tmp_path.iterdir()) == []


# --- answer columns from schemas ---


@pytest.mark.parametrize(
    ("schema", "arrow"),
    [
        ({"type": "string"}, pa.string()),
        ({"enum": ["a", "b"]}, pa.string()),
        ({"type": "boolean"}, pa.bool_()),
        ({"type": "integer"}, pa.int64()),
        ({"type": "number"}, pa.float64()),
        ({"type": ["number", "null"]}, pa.float64()),
        ({"type": "array", "items": {"type": "integer"}}, pa.list_(pa.int64())),
        (
            {
                "type": "object",
                "properties": {"n": {"type": "integer"}, "o": {"properties": {"b": {"const": True}}}},
            },
            pa.struct([("n", pa.int64()), ("o", pa.struct([("b", pa.bool_())]))]),
        ),
    ],
)
def test_a_schema_gives_its_answers_a_typed_column(schema, arrow):
    column = schema_column(schema, "p")
    assert column.arrow == arrow and column.as_text == ()


@pytest.mark.parametrize(
    ("schema", "why"),
    [
        ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, "oneOf"),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": True},
            "additional",
        ),
        ({"type": "object"}, "without properties"),
        ({"type": "array"}, "without one schema for its items"),
        ({"enum": ["a", 1]}, "several types"),
        ({"type": ["string", "integer"]}, "no single type"),
    ],
)
def test_a_schema_that_cannot_be_typed_is_json_text_and_says_why(schema, why):
    column = schema_column({"type": "object", "properties": {"x": schema}}, "p")
    assert column.arrow == pa.struct([("x", pa.string())])
    (path, reason), *_ = column.as_text
    assert path == "p.x" and why in reason
    assert column.convert({"x": {"k": [1]}}) == {"x": '{"k":[1]}'}


@pytest.fixture(scope="module")
def damaged_avi(tmp_path_factory) -> Path:
    """An AVI of MPEG-4 Part 2 video and AC-3 audio, 8 s at 25 fps, with one audio packet's bytes zeroed:
    FFmpeg reports it and goes on; the exact cut failed every window with "avcodec_send_packet()"."""
    folder = tmp_path_factory.mktemp("damaged")
    whole, damaged = folder / "whole.avi", folder / "damaged.avi"
    tone = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=8"]
    ffmpeg(*pattern_input("320x240", 25, 8), *tone, "-c:v", "mpeg4", "-q:v", "5", "-c:a", "ac3", str(whole))
    with av.open(str(whole)) as container:
        position, size = [(p.pos, p.size) for p in container.demux(container.streams.audio[0]) if p.size][10]
    data = bytearray(whole.read_bytes())
    data[position : position + size] = bytes(size)
    damaged.write_bytes(data)
    return damaged


@pytest.mark.slow
def test_a_damaged_audio_packet_is_skipped_and_every_window_is_cut_frame_exact(damaged_avi, tmp_path):
    from smolvlm_video.export.cutting import Damage

    spans = [
        Span(0, 2, tmp_path / "a.mp4"),
        Span(2, 4.4, tmp_path / "b.mp4"),
        Span(4.4, 8, tmp_path / "c.mp4"),
    ]
    damage = Damage()
    assert cut_spans(probe(damaged_avi), spans, CutOptions(), damage=damage) == [None, None, None]
    assert damage.packets == {"audio": 1} and damage.audio_note() == "gaps: 1 damaged packets skipped"
    source = frames_of(damaged_avi)
    for span in spans:
        frames = frames_of(span.target)
        assert len(frames) == round((span.end - span.start) * 25)
        first = frames[0][1]
        closest = min(source, key=lambda pair: np.abs(first - pair[1]).mean())[0]
        assert abs(closest - span.start) < 0.5 / 25  # the frame at the window's start, no other
        with av.open(str(span.target)) as container:
            assert container.streams.audio  # the audio kept, its damaged packet left out


@pytest.fixture(scope="module")
def scrambled_mp4(tmp_path_factory) -> tuple[Path, Path]:
    """An H.264 MP4 with B-frames and MP3 audio whose muxer stored each video packet's decoding time as its
    presentation time, as some old muxers did: the decoder hands its frames out timed 0, 1, 4, 3, 5, 2, ...
    frames, while it shows them in order. The exact cut failed every window with "Invalid argument ...
    returned 22". Returned with the same video muxed rightly, whose frames are the truth."""
    folder = tmp_path_factory.mktemp("scrambled")
    right, scrambled = folder / "right.mp4", folder / "scrambled.mp4"
    tone = ["-f", "lavfi", "-i", "sine=frequency=440:duration=6"]
    b_frames = ["-bf", "3", "-x264-params", "b-pyramid=normal:keyint=60"]
    ffmpeg(
        *pattern_input("320x240", 30, 6),
        *tone,
        "-c:v",
        "libx264",
        *b_frames,
        "-c:a",
        "libmp3lame",
        str(right),
    )
    with av.open(str(right)) as source, av.open(str(scrambled), "w") as output:
        copies = {stream: output.add_stream_from_template(stream) for stream in source.streams}
        for packet in source.demux():
            if packet.dts is None:
                continue
            if packet.stream.type == "video":
                packet.pts = packet.dts
            packet.stream = copies[packet.stream]
            output.mux(packet)
    with av.open(str(scrambled)) as container:
        times = [frame.pts for frame in container.decode(video=0)][:8]
    assert times != sorted(times)
    return right, scrambled


@pytest.mark.slow
def test_frames_timed_out_of_order_are_cut_in_presentation_order(scrambled_mp4, tmp_path):
    right, scrambled = scrambled_mp4
    spans = [
        Span(0, 2, tmp_path / "a.mp4"),
        Span(2, 4.5, tmp_path / "b.mp4"),
        Span(4.5, 5.9, tmp_path / "c.mp4"),
    ]
    assert cut_spans(probe(scrambled), spans, CutOptions()) == [None, None, None]
    truth = frames_of(right)
    for span in spans:
        shown = [
            min(range(len(truth)), key=lambda k: np.abs(image - truth[k][1]).mean())
            for _, image in frames_of(span.target)
        ]
        assert shown[-1] == round(span.end * 30) - 1  # the window's last frame, no later one
        if span.start:  # the first frames of the file lost their times to the muxer: ffmpeg guesses them
            assert shown == list(range(round(span.start * 30), round(span.end * 30)))  # every frame, in order
        with av.open(str(span.target)) as container:
            assert container.streams.audio


def test_cut_windows_record_the_facts_of_their_clip(hf_export):
    windows = [w for w in pq.read_table(hf_export / "data" / "windows").to_pylist() if w["cut_path"]]
    assert windows
    for window in windows:
        clip = hf_export / window["cut_path"]["path"]
        assert window["cut_bytes"] == clip.stat().st_size
        assert window["cut_has_audio"] == window["path"].endswith("shots.mp4")  # the one source with audio
        assert abs(window["cut_frames"] - (window["end"] - window["start"]) * window["cut_fps"]) <= 1
