"""`smolvlm-video caption --engine ray` on a local Ray with 2 CPU actors: the local engine's records."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import requires_ffmpeg

from smolvlm_video.errors import CorruptVideoError, ImageError

pytestmark = [pytest.mark.slow, requires_ffmpeg]


def test_errors_survive_pickling_between_workers():
    for error in (CorruptVideoError("/clips/a.mp4", "truncated"), ImageError("b.png", "damaged")):
        copy = pickle.loads(pickle.dumps(error))
        assert (type(copy), str(copy), copy.path, copy.code) == (
            type(error),
            str(error),
            error.path,
            error.code,
        )


def caption(cwd: Path, checkpoint: Path, output: str, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "smolvlm_video", "caption", "clips", "-o", output, "--quiet"]
    command += ["--model", str(checkpoint), "--max-new-tokens", "6", "--max-frames", "4", "--batch-size", "2"]
    command += ["--window-seconds", "1.5", "--summarize"]  # two windows a clip, answered on any actor
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a local Ray, started by the command
    env.update(HF_HUB_OFFLINE="1", RAY_AUTH_MODE="disabled")
    return subprocess.run([*command, *extra], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def records(path: Path) -> dict[str, dict]:
    return {r["id"]: r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


def test_ray_engine_gives_the_local_engines_records(tmp_path, tiny_checkpoint, clip, make_video):
    pytest.importorskip("ray.data")
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(clip, clips / "a.mp4")
    shutil.copy(make_video("portrait.mp4", size="120x200"), clips / "vidéo b.mp4")
    (clips / "broken.mp4").write_text("not a video at all\n")
    (clips / "empty.mov").write_bytes(b"")

    local = caption(tmp_path, tiny_checkpoint, "local.jsonl")
    ray_flags = ["--engine", "ray", "--engine-option", "concurrency=2"]
    ray = caption(tmp_path, tiny_checkpoint, "ray.jsonl", *ray_flags)
    assert local.returncode == ray.returncode == 1, ray.stderr[-3000:]  # two clips failed, in both
    by_local, by_ray = records(tmp_path / "local.jsonl"), records(tmp_path / "ray.jsonl")
    assert set(by_ray) == set(by_local) and len(by_ray) == 4, ray.stderr[-3000:]
    for ident, expected in by_local.items():
        got = by_ray[ident]
        assert (got["path"], got["status"], got["caption"]) == (
            expected["path"],
            expected["status"],
            expected["caption"],
        )
        assert got["windows"] == expected["windows"] and got["summarized"] == expected["summarized"]
        assert (got["error"] or {}).get("type") == (expected["error"] or {}).get(
            "type"
        )  # messages: absolute paths
    assert {r["error"]["type"] for r in by_ray.values() if r["error"]} == {"not_a_video", "empty"}
    assert [len(r["windows"]) for r in by_ray.values() if r["status"] == "ok"] == [2, 2]
    assert all(r["summarized"] for r in by_ray.values() if r["status"] == "ok")

    rerun = caption(tmp_path, tiny_checkpoint, "ray.jsonl", "--engine", "ray", "--no-retry-errors")
    assert rerun.returncode == 0 and len(records(tmp_path / "ray.jsonl")) == 4  # all skipped, none added
