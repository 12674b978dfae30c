"""Caption records and the JSONL file: one parseable line per record, resumable after a crash."""

from __future__ import annotations

import json

from smolvlm_video.batch.records import (
    CaptionRecord,
    JsonlWriter,
    clip_id,
    error_record,
    finished_ids,
    read_records,
)
from smolvlm_video.errors import CorruptVideoError


def _ok(path: str, id_: str) -> CaptionRecord:
    return CaptionRecord(path=path, abs_path="/abs/" + path, id=id_, status="ok", caption="A cat. Ünïcode ✓")


def test_records_are_single_lines_that_round_trip(tmp_path):
    out = tmp_path / "captions.jsonl"
    with JsonlWriter(out) as writer:
        writer.write(_ok("a.mp4", "1"))
        writer.write(error_record("missing.mp4", CorruptVideoError("missing.mp4", "truncated")))
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["caption"] == "A cat. Ünïcode ✓" and first["status"] == "ok"
    assert second["status"] == "error" and second["error"] == {
        "type": "corrupt",
        "message": "missing.mp4: truncated",
    }


def test_torn_last_line_is_cut_on_reopen(tmp_path):
    out = tmp_path / "captions.jsonl"
    out.write_text(_ok("a.mp4", "1").to_json() + "\n" + '{"path": "b.mp4", "id": "2", "sta', encoding="utf-8")
    with JsonlWriter(out) as writer:
        writer.write(_ok("c.mp4", "3"))
    assert [r["id"] for r in read_records(out)] == ["1", "3"]
    assert all(json.loads(line) for line in out.read_text(encoding="utf-8").splitlines())


def test_finished_ids_skip_ok_and_retry_errors(tmp_path):
    out = tmp_path / "captions.jsonl"
    with JsonlWriter(out) as writer:
        writer.write(_ok("a.mp4", "1"))
        writer.write(error_record("b.mp4", ValueError("boom"), id="2"))
        writer.write(error_record("c.mp4", ValueError("boom"), id="3"))
        writer.write(_ok("c.mp4", "3"))  # a retry that worked
    assert finished_ids(out) == {"1", "3"}
    assert finished_ids(out, retry_errors=False) == {"1", "2", "3"}
    assert finished_ids(tmp_path / "none.jsonl") == set()


def test_clip_id_is_stable_and_changes_with_the_file(tmp_path):
    clip = tmp_path / "vidéo 1.mp4"
    clip.write_bytes(b"x" * 10)
    first = clip_id(clip)
    assert first == clip_id(clip) and len(first) == 16
    clip.write_bytes(b"x" * 11)
    assert clip_id(clip) != first
