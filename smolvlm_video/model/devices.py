"""Which device, precision and attention a model runs with, and why.

- Device: CUDA, then Apple MPS, then the CPU.
- Precision on CUDA: bfloat16 from compute capability 8.0 on (A100, L4, H100, RTX 30xx and newer),
  whose tensor cores have it; float16 below (T4 7.5, V100 7.0), where torch still reports bfloat16
  as supported but emulates it, far slower. On MPS, float16.
- Precision on the CPU: bfloat16 only where the CPU has native bfloat16 instructions (`amx_bf16` or
  `avx512_bf16` among its flags) and a matrix product of a language model layer's size measures it
  faster than float32; float32 elsewhere, since emulated bfloat16 is many times slower.
- Attention: flash_attention_2 on CUDA from compute capability 8.0 on, in half precision, where
  flash_attn can be imported; PyTorch's sdpa otherwise.
- Vision encoding: on CUDA, one call of the vision encoder for every frame of a batch, the shape a GPU
  runs best; on the CPU and MPS, one chat's frames per call, since on the CPU a bigger call is slower
  per frame (measured: see `smolvlm_video.model.generate`). `benchmarks/gpu.py --vision batched,per-chat`
  measures both on a GPU.
- Pixels made ahead: on CUDA, a batch engine's decoding threads also make each window's pixels, in
  pinned memory, so preprocessing overlaps generation and the copy to the GPU does not block. Elsewhere
  the model's thread makes them when it answers: the CPU's cores already decode and generate, and
  float32 pixels made ahead hold 4x the frames' memory. The prompt is the same either way.

Anything but "auto" is taken as asked.
"""

from __future__ import annotations

import functools
import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import OptionsError
from ..options import check_runtime

DTYPES = {"auto": None, "bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
# Ampere: the first CUDA cards with bfloat16 tensor cores (and flash-attention 2)
BFLOAT16_CAPABILITY = (8, 0)
CPU_BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of native bfloat16 instructions
CPU_BFLOAT16_MIN_SPEEDUP = 1.2  # bfloat16 must be at least this much faster than float32 to be chosen
PROBE_SIDE = 576  # the matrix side of the CPU probe: SmolLM2-135M's hidden size


@dataclass(frozen=True)
class DeviceChoice:
    """Where and how a model runs, with one line of why for each choice."""

    device: torch.device
    dtype: torch.dtype
    attention: str
    vision: str  # "batched" or "per-chat" (see `smolvlm_video.model.generate`)
    prepare_ahead: bool  # a batch engine's decoding threads make each window's pixels (see above)
    why: tuple[str, ...]
    compile: bool = False  # a compiled decoding step with a static cache (`model.compiling`)

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "attention": self.attention,
            "vision": self.vision,
            "prepare_ahead": self.prepare_ahead,
            "compile": self.compile,
            "why": list(self.why),
        }


def choose(
    device: str = "auto",
    dtype: str = "auto",
    attention: str = "auto",
    vision: str = "auto",
    compile: str = "auto",
) -> DeviceChoice:
    """The device, dtype, attention, vision batching and compiling asked ("auto" or a name each), and why."""
    check_runtime(device, dtype, attention, vision, compile)
    target, device_why = pick_device(device)
    torch_dtype, dtype_why = pick_dtype(dtype, target)
    attention, attention_why = pick_attention(attention, target, torch_dtype)
    vision, vision_why = pick_vision(vision, target)
    prepare_ahead, prepare_why = pick_prepare_ahead(target)
    compiled, compile_why = pick_compile(compile, target)
    why = (device_why, dtype_why, attention_why, vision_why, prepare_why, compile_why)
    return DeviceChoice(target, torch_dtype, attention, vision, prepare_ahead, why, compiled)


def pick_device(device: str = "auto") -> tuple[torch.device, str]:
    """CUDA, then Apple MPS, then the CPU; or the (checked) device asked for, if this machine has it."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise OptionsError(
            "device 'cuda' was asked for, but torch sees no CUDA GPU here; use --device cpu.", "device"
        )
    if device == "mps" and not torch.backends.mps.is_available():
        raise OptionsError(
            "device 'mps' was asked for, but this machine has no Apple GPU; use --device cpu.", "device"
        )
    if device != "auto":
        return torch.device(device), f"device {device}: as asked"
    if torch.cuda.is_available():
        return torch.device("cuda"), f"device cuda: {torch.cuda.get_device_name(0)}"
    if torch.backends.mps.is_available():
        return torch.device("mps"), "device mps: an Apple GPU, no CUDA"
    return torch.device("cpu"), "device cpu: no CUDA or Apple GPU"


def pick_dtype(dtype: str, device: torch.device) -> tuple[torch.dtype, str]:
    """The precision (a checked name) for a device (see the module's docstring), and why."""
    chosen = DTYPES[dtype]
    if chosen is not None:
        return chosen, f"dtype {dtype}: as asked"
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        if (major, minor) >= BFLOAT16_CAPABILITY:
            return torch.bfloat16, f"dtype bfloat16: compute capability {major}.{minor} has it natively"
        return torch.float16, f"dtype float16: compute capability {major}.{minor} only emulates bfloat16"
    if device.type == "mps":
        return torch.float16, "dtype float16: the Apple GPU's half precision"
    speedup = cpu_bfloat16_speedup()
    if speedup is None:
        return torch.float32, "dtype float32: this CPU has no native bfloat16 (amx_bf16, avx512_bf16)"
    if speedup >= CPU_BFLOAT16_MIN_SPEEDUP:
        return torch.bfloat16, f"dtype bfloat16: native on this CPU, {speedup:.1f}x float32's speed"
    return torch.float32, f"dtype float32: bfloat16 is native here but only {speedup:.1f}x float32's speed"


def pick_attention(attention: str, device: torch.device, dtype: torch.dtype) -> tuple[str, str]:
    """flash_attention_2 where it works (see the module's docstring), else sdpa; and why."""
    if attention != "auto":
        return attention, f"attention {attention}: as asked"
    if device.type != "cuda":
        return "sdpa", f"attention sdpa: flash-attention 2 needs CUDA, not {device.type}"
    major, minor = torch.cuda.get_device_capability(device)
    if (major, minor) < BFLOAT16_CAPABILITY:
        return "sdpa", f"attention sdpa: flash-attention 2 needs compute capability 8.0, not {major}.{minor}"
    if dtype not in (torch.float16, torch.bfloat16):
        return "sdpa", f"attention sdpa: flash-attention 2 needs half precision, not {dtype}"
    if importlib.util.find_spec("flash_attn") is None:
        return "sdpa", "attention sdpa: flash_attn is not installed (pip install flash-attn)"
    return "flash_attention_2", f"attention flash_attention_2: compute capability {major}.{minor}, flash_attn"


def pick_vision(vision: str, device: torch.device) -> tuple[str, str]:
    """How the vision encoder takes a batch's frames (see the module's docstring), and why."""
    if vision != "auto":
        return vision, f"vision {vision}: as asked"
    if device.type == "cuda":
        return "batched", "vision batched: one vision encoder call a batch keeps a GPU busy"
    return "per-chat", f"vision per-chat: on {device.type}, bigger vision calls are slower per frame"


def pick_prepare_ahead(device: torch.device) -> tuple[bool, str]:
    """Whether decoding threads make the pixels ahead (see the module's docstring), and why."""
    if device.type == "cuda":
        return True, "pixels made ahead: on the decoding threads, pinned, copied to the GPU without blocking"
    return False, f"pixels made when answered: on {device.type}, the cores already decode and generate"


def pick_compile(compile: str, device: torch.device) -> tuple[bool, str]:
    """Whether decoding runs as a compiled step with a static cache (`model.compiling`), and why."""
    if compile != "auto":
        return compile == "on", f"compile {compile}: as asked"
    if device.type == "cuda":
        return True, "compile on: on CUDA a compiled step saves the kernel launches each token waits on"
    return False, (
        f"compile off: on {device.type} a step is bound by its arithmetic; a compiled one was not reliably "
        "faster on the CPU (benchmarks/compile.py)"
    )


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (Linux); empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return set(line.partition(":")[2].split())


@functools.cache
def cpu_bfloat16_speedup() -> float | None:
    """bfloat16's speed over float32 for a layer-sized matrix product here; None without native bfloat16."""
    if not cpu_flags() & set(CPU_BFLOAT16_FLAGS):
        return None
    return _matmul_seconds(torch.float32) / _matmul_seconds(torch.bfloat16)


def _matmul_seconds(dtype: torch.dtype, repeats: int = 5) -> float:
    """The best of a few runs of 256 tokens through an MLP's up-projection (hidden x 4 hidden)."""
    inputs = torch.randn(256, PROBE_SIDE, dtype=dtype)
    weight = torch.randn(PROBE_SIDE, 4 * PROBE_SIDE, dtype=dtype)
    inputs @ weight  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        inputs @ weight
        best = min(best, time.perf_counter() - started)
    return best
