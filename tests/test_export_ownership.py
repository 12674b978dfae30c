"""`export` owns only what it wrote: a project folder's own files survive, a format switch leaves exactly the
new export, a killed export's staging and stale clip files are cleaned up, and an empty JSONL is refused."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import requires_ffmpeg
from test_export import ROOT, captioned, run, shots  # noqa: F401  # the fixtures, made once per module

from smolvlm_video.export.exporting import export
from smolvlm_video.export.options import CutOptions, ExportOptions
from smolvlm_video.export.ownership import MANIFEST, PathInTheWayError

pytestmark = [requires_ffmpeg]


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, by its path from it, with its bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def shards_alike(files: dict[str, bytes]) -> dict[str, bytes]:
    """The files with each shard's name freed of its export's time, and the manifest of the shard names."""
    return {
        re.sub("train-[0-9a-f]+-", "train-", name): data for name, data in files.items() if name != MANIFEST
    }


@pytest.fixture
def project(tmp_path, tiny_checkpoint) -> Path:
    """A project folder with its own README.md and data/videos/, captioned into captions.jsonl."""
    folder = tmp_path / "proj"
    (folder / "data" / "videos").mkdir(parents=True)
    shutil.copy(ROOT / "examples" / "clips" / "testsrc2.mp4", folder / "data" / "videos")
    (folder / "README.md").write_text("mine\n")
    (folder / "data" / "notes.txt").write_text("my notes\n")
    result = run("caption", folder / "data" / "videos", "-o", folder / "captions.jsonl", "--model",
                 tiny_checkpoint, "--max-new-tokens", "4", "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    return folder


@pytest.mark.slow
def test_an_export_into_a_project_folder_is_refused_and_changes_nothing(project):
    before = tree(project)
    result = run("export", project / "captions.jsonl", project, "--to", "hf")
    assert result.exit_code == 2, result.output
    assert "README.md" in result.output and "--force" in result.output and "dataset" in result.output
    assert tree(project) == before


@pytest.mark.slow
def test_force_replaces_the_exports_own_paths_and_nothing_else(project):
    videos = tree(project / "data" / "videos")
    result = run("export", project / "captions.jsonl", project, "--to", "hf", "--force", "--quiet")
    assert result.exit_code == 0, result.output
    assert (
        tree(project / "data" / "videos") == videos
        and (project / "data" / "notes.txt").read_text() == "my notes\n"
    )
    assert "Made with smolvlm-video" in (project / "README.md").read_text()
    manifest = json.loads((project / MANIFEST).read_text())
    assert manifest == {"format": "hf", "paths": ["README.md", "data/clips", "data/windows"]}
    again = run("export", project / "captions.jsonl", project, "--to", "hf", "--quiet")  # its own now
    assert again.exit_code == 0 and tree(project / "data" / "videos") == videos


def test_switching_format_leaves_exactly_the_second_export(captioned, tmp_path):  # noqa: F811
    both, alone = tmp_path / "both", tmp_path / "alone"
    export(captioned, both, ExportOptions(format="hf"))
    assert (both / "README.md").exists() and (both / "data" / "windows").is_dir()
    report = export(captioned, both, ExportOptions(format="webdataset"))
    export(captioned, alone, ExportOptions(format="webdataset"))
    assert report.removed == ["README.md", "data/clips", "data/windows"]
    assert shards_alike(tree(both)) == shards_alike(tree(alone))
    assert [p.suffix for p in (both / "data").iterdir()] == [".tar"]


def test_an_export_written_before_manifests_is_recognised_once_as_its_own(captioned, tmp_path):  # noqa: F811
    folder = tmp_path / "old"
    export(captioned, folder, ExportOptions(format="hf"))
    (folder / MANIFEST).unlink()  # as an export made before manifests existed left it
    export(captioned, folder, ExportOptions(format="hf"))  # recognised by its card and tables
    assert json.loads((folder / MANIFEST).read_text())["format"] == "hf"


def test_a_path_in_the_way_is_named_for_every_format(captioned, tmp_path):  # noqa: F811
    for form, path in (("hf", "data/windows"), ("parquet", "clips.parquet")):
        folder = tmp_path / form
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text("somebody else's")
        with pytest.raises(PathInTheWayError, match=path):
            export(captioned, folder, ExportOptions(format=form))
        assert (folder / path).read_text() == "somebody else's"


@pytest.mark.slow
def test_a_killed_export_leaves_no_staging_folder_after_the_next_run(captioned, tmp_path):  # noqa: F811
    folder = tmp_path / "killed"
    flags = ["--to", "webdataset", "--clips", "--clip-preset", "veryslow", "--workers", "1", "--quiet"]
    command = [sys.executable, "-m", "smolvlm_video", "export", str(captioned), str(folder), *flags]
    process = subprocess.Popen(command)
    deadline = time.monotonic() + 60
    while not list(folder.glob(".export-*/data/*.tar")) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert list(folder.glob(".export-*")), "the export ended before it could be killed"
    result = run("export", captioned, folder, "--to", "webdataset", "--quiet")
    assert result.exit_code == 0, result.output
    assert not list(folder.glob(".export-*"))


@pytest.mark.slow
def test_clip_files_no_row_uses_are_removed_unless_kept(captioned, tmp_path):  # noqa: F811
    folder = tmp_path / "cuts"
    first = export(captioned, folder, ExportOptions(cut=CutOptions(crf=30)))
    old = set(tree(folder / "cuts"))
    assert first.stale_cuts == 0 and old
    kept = export(captioned, folder, ExportOptions(cut=CutOptions(crf=31), keep_stale_cuts=True))
    assert kept.stale_cuts == 0 and old <= set(tree(folder / "cuts"))
    second = export(captioned, folder, ExportOptions(cut=CutOptions(crf=32)))
    now = {f"cuts/{p}" for p in tree(folder / "cuts")}
    assert second.stale_cuts == 2 * len(old) and now == second.used_cuts  # crf 30's and 31's went
    third = export(captioned, folder, ExportOptions())  # no clips: every clip file is stale
    assert third.stale_cuts == len(now) and not (folder / "cuts").exists()


def test_an_empty_jsonl_is_refused_with_exit_2_and_writes_nothing(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = run("export", empty, tmp_path / "out")
    assert result.exit_code == 2 and "no caption record" in result.output
    assert not (tmp_path / "out").exists()


def test_the_card_is_fit_to_publish(captioned, tmp_path):  # noqa: F811
    folder = tmp_path / "card"
    export(captioned, folder, ExportOptions(license="cc-by-4.0", name="ann/street-clips"))
    card = (folder / "README.md").read_text()
    assert "license: cc-by-4.0" in card and "- video-text-to-text" in card and "- n<1K" in card
    assert 'load_dataset("ann/street-clips", "windows"' in card
    assert f'hf upload ann/street-clips {folder.name} --repo-type dataset --exclude "{MANIFEST}"' in card


@pytest.mark.slow
def test_a_moved_source_is_found_with_source_root_and_a_touched_one_is_not_changed(tmp_path, tiny_checkpoint):
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(ROOT / "examples" / "clips" / "testsrc2.mp4", source / "clip.mp4")
    records = tmp_path / "captions.jsonl"
    result = run(
        "caption", source, "-o", records, "--model", tiny_checkpoint, "--max-new-tokens", "2", "--quiet"
    )
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(line) for line in records.read_text().splitlines()]
    assert record["video"]["fingerprint"].startswith(f"{(source / 'clip.mp4').stat().st_size}:")

    def cut_errors(folder: str, *flags: str) -> set:
        result = run("export", records, tmp_path / folder, "--to", "parquet", "--clips", "--quiet", *flags)
        windows = pq.read_table(tmp_path / folder / "windows.parquet").to_pylist()
        return {(result.exit_code, window["cut_error_type"]) for window in windows}

    moved = tmp_path / "elsewhere"
    source.rename(moved)
    assert cut_errors("lost") == {(1, "not_found")}
    assert cut_errors("found", "--source-root", f"{source}={moved}") == {(0, None)}
    os.utime(moved / "clip.mp4", (1, 1))  # a bare touch: the same content
    assert cut_errors("touched", "--source-root", f"{source}={moved}") == {(0, None)}
    with open(moved / "clip.mp4", "ab") as file:
        file.write(b"\0" * 10)  # the content changed
    assert cut_errors("changed", "--source-root", f"{source}={moved}") == {(1, "changed")}


def test_published_tables_hold_no_absolute_path_unless_kept(captioned, tmp_path):  # noqa: F811
    export(captioned, tmp_path / "plain", ExportOptions(format="parquet"))
    clips = pq.read_table(tmp_path / "plain" / "clips.parquet")
    windows = pq.read_table(tmp_path / "plain" / "windows.parquet").to_pylist()
    assert "abs_path" not in clips.column_names
    assert sorted(clips.column("path").to_pylist()) == ["broken.mp4", "shots.mp4", "testsrc2.mp4"]
    assert {window["path"] for window in windows} == {"shots.mp4", "testsrc2.mp4"}
    assert str(tmp_path) not in json.dumps(clips.to_pylist(), default=str)
    above = captioned.parent.parent
    export(
        captioned,
        tmp_path / "kept",
        ExportOptions(format="parquet", keep_abs_paths=True, relative_to=str(above)),
    )
    kept = pq.read_table(tmp_path / "kept" / "clips.parquet").to_pylist()
    folder = captioned.parent.name
    assert sorted(row["path"] for row in kept) == [
        f"{folder}/clips/{n}" for n in ("broken.mp4", "shots.mp4", "testsrc2.mp4")
    ]
    assert all(row["abs_path"].startswith(str(above)) for row in kept)
