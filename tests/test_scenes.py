"""Windows that follow the shots: a clip of three sources joined with ffmpeg's concat."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ffmpeg, requires_ffmpeg
from smolvlm_video.cli.main import cli

from smolvlm_video.options import SamplingOptions
from smolvlm_video.video import plan_video
from smolvlm_video.video.probe import probe
from smolvlm_video.video.sampling import shot_windows
from smolvlm_video.video.scenes import Shot, detect_shots

pytestmark = [requires_ffmpeg]
SOURCES = ["testsrc2", "smptebars", "mandelbrot"]  # three different pictures, one after the other
SECONDS = [3.0, 4.0, 3.0]
CUTS = [3.0, 7.0]


@pytest.fixture(scope="module")
def three_shots(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("shots") / "three-shots.mp4"
    inputs = []
    for source, seconds in zip(SOURCES, SECONDS, strict=True):
        inputs += ["-f", "lavfi", "-t", str(seconds), "-i", f"{source}=size=320x240:rate=25"]
    joined = "".join(f"[{i}:v]" for i in range(3)) + "concat=n=3:v=1:a=0[v]"
    ffmpeg(
        *inputs, "-filter_complex", joined, "-map", "[v]", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)
    )
    return path


def test_the_shots_of_a_joined_clip_are_found(three_shots):
    shots = detect_shots(probe(three_shots))
    assert len(shots) == 3 and shots[0].start == 0.0 and shots[-1].end == pytest.approx(10.0, abs=0.05)
    for found, cut in zip([s.start for s in shots[1:]], CUTS, strict=True):
        assert abs(found - cut) <= 0.5


def test_a_clip_without_a_cut_is_one_shot(make_video):
    info = probe(make_video("no-cut.mp4", seconds=4))
    assert detect_shots(info) == [Shot(0.0, info.duration)]


@pytest.mark.slow
def test_caption_gives_a_window_per_shot_and_a_cue_per_shot(tiny_checkpoint, three_shots, tmp_path):
    out = tmp_path / "captions.jsonl"
    args = ["caption", str(three_shots), "-o", str(out), "--model", str(tiny_checkpoint), "--quiet"]
    result = CliRunner().invoke(
        cli, [*args, "--max-new-tokens", "3", "--split", "scenes", "--subtitles", "srt"]
    )
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    windows = record["windows"]
    assert len(windows) == 3 and record["sampling"]["split"] == "scenes"
    for window, cut in zip(windows[1:], CUTS, strict=True):
        assert abs(window["start"] - cut) <= 0.5
    assert all(a["end"] == b["start"] for a, b in itertools.pairwise(windows))
    (subtitles,) = tmp_path.glob("*.srt")
    assert subtitles.read_text(encoding="utf-8").count(" --> ") == 3


def test_info_lists_the_shots(three_shots):
    result = CliRunner().invoke(cli, ["info", str(three_shots), "--split", "scenes", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert len(report["shots"]) == 3 and len(report["windows"]) == 3
    fixed = json.loads(CliRunner().invoke(cli, ["info", str(three_shots), "--json"]).output)
    assert fixed["shots"] is None and len(fixed["windows"]) == 1


def test_short_shots_join_the_next_and_long_ones_are_split():
    shots = [Shot(0, 1), Shot(1, 5), Shot(5, 5.5), Shot(5.5, 300), Shot(300, 301)]
    spans = [(w.start, w.end) for w in shot_windows(shots, max_seconds=210, min_seconds=2)]
    assert spans == [(0, 5), (5, 153), (153, 301)]  # 5-301 is 296 s: two windows of 148 s
    assert [w.index for w in shot_windows(shots, 210, 2)] == [0, 1, 2]
    assert [(w.start, w.end) for w in shot_windows([Shot(0, 1)], 210, 2)] == [(0, 1)]


def test_scenes_follow_the_sampling_span(three_shots):
    def spans(min_scene_seconds: float) -> list[tuple[float, float]]:
        options = SamplingOptions(split="scenes", start=2.0, end=8.0, min_scene_seconds=min_scene_seconds)
        return [(round(p.window.start), round(p.window.end)) for p in plan_video(three_shots, options)[1]]

    assert spans(0.5) == [(2, 3), (3, 7), (7, 8)]
    assert spans(2.0) == [(2, 8)]  # 2-3 s joins the next shot, and 7-8 s, short and last, the one before
