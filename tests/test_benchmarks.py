"""Benchmarks that need hardware this machine may lack say so in one line; their yardsticks hold."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the benchmark would run")
def test_gpu_benchmark_without_cuda_exits_with_one_line(tmp_path):
    command = [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--cache-dir", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "benchmarks/gpu.py needs a CUDA GPU, and torch sees none here (--device cpu checks the script)."
    ]
    assert not list(tmp_path.iterdir())  # nothing was built before the check


@pytest.mark.parametrize("name", ["limit-b2.mp4", "limit-b2.mkv"])
def test_sampling_limit_reaches_every_frame_taken(make_video, name):
    # The limit decodes only up to each keyframe interval's last frame taken; it must still get there.
    from smolvlm_video import SamplingOptions, sample_video

    spec = importlib.util.spec_from_file_location("sampling_benchmark", ROOT / "benchmarks" / "sampling.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    path = make_video(name, rate=25, seconds=12, codec=("-c:v", "libx264", "-g", "50", "-bf", "3"))
    taken = sample_video(path, SamplingOptions(fps=2, frame_side=64)).timestamps
    assert benchmark.limit(str(path), taken) == len(taken) == 24
    whole = benchmark.frames_taken(str(path))  # the benchmark's own sampling: 64 frames over the whole clip
    assert len(whole) == 64 and benchmark.limit(str(path), whole) == 64
    assert benchmark.limit(str(path), [*taken, 60.0]) == -1  # a frame past the end is never reached
