"""The benchmarks that need hardware this machine may lack say so in one line."""

from __future__ import annotations

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
