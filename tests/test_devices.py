"""What auto picks for device, precision, attention and vision batching, on faked CUDA cards and CPUs."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from smolvlm_video.errors import OptionsError
from smolvlm_video.model import devices
from smolvlm_video.options import ModelOptions

CARDS = [  # name, compute capability, the precision auto must pick
    ("Tesla T4", (7, 5), torch.float16),
    ("Tesla V100-SXM2-16GB", (7, 0), torch.float16),
    ("NVIDIA A100-SXM4-80GB", (8, 0), torch.bfloat16),
    ("NVIDIA H100 80GB HBM3", (9, 0), torch.bfloat16),
]


@pytest.fixture
def fake_cuda(monkeypatch):
    """fake_cuda(name, capability, flash_attn): torch sees that card; flash_attn importable or not."""

    def fake(name: str, capability: tuple[int, int], flash_attn: bool) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        monkeypatch.setattr(
            torch.cuda, "is_bf16_supported", lambda *a, **k: True
        )  # as torch says on a T4 too
        real = importlib.util.find_spec
        spec = object() if flash_attn else None
        monkeypatch.setattr(
            devices.importlib.util,
            "find_spec",
            lambda module, *a: spec if module == "flash_attn" else real(module, *a),
        )

    return fake


@pytest.fixture
def cpu_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    devices.cpu_bfloat16_speedup.cache_clear()
    yield
    devices.cpu_bfloat16_speedup.cache_clear()


@pytest.mark.parametrize("flash_attn", [False, True], ids=["no-flash-attn", "flash-attn"])
@pytest.mark.parametrize(("name", "capability", "dtype"), CARDS, ids=[c[0].split()[-1] for c in CARDS])
def test_cuda_cards_get_their_precision_and_attention(fake_cuda, name, capability, dtype, flash_attn):
    fake_cuda(name, capability, flash_attn)
    choice = devices.choose()
    assert choice.device.type == "cuda" and choice.dtype == dtype
    native = capability >= (8, 0)
    assert choice.attention == ("flash_attention_2" if native and flash_attn else "sdpa")
    device_why, dtype_why, attention_why, vision_why, prepare_why, compile_why = choice.why
    assert choice.prepare_ahead and "pinned" in prepare_why
    assert choice.compile and "compile on" in compile_why
    assert name in device_why and f"{capability[0]}.{capability[1]}" in dtype_why
    assert choice.attention in attention_why
    assert choice.vision == "batched" and "batched" in vision_why
    assert ("emulates" in dtype_why) is not native
    assert choice.to_dict()["dtype"] == str(dtype).removeprefix("torch.")


def test_asked_values_win_over_auto(fake_cuda):
    fake_cuda("Tesla T4", (7, 5), flash_attn=True)
    choice = devices.choose("cuda", "bfloat16", "eager", "per-chat")
    assert (choice.dtype, choice.attention, choice.vision) == (torch.bfloat16, "eager", "per-chat")
    assert all("as asked" in why for why in choice.why[:4])  # pixels made ahead is the device's alone


def test_cpu_without_native_bfloat16_stays_float32(cpu_only, monkeypatch):
    monkeypatch.setattr(devices, "cpu_flags", lambda: {"avx2", "fma", "avx512f"})
    monkeypatch.setattr(devices, "_matmul_seconds", lambda dtype: pytest.fail("no probe without the flags"))
    choice = devices.choose()
    assert (choice.device.type, choice.dtype, choice.attention) == ("cpu", torch.float32, "sdpa")
    assert not choice.prepare_ahead and "when answered" in choice.why[4]
    assert choice.vision == "per-chat"
    assert "no native bfloat16" in choice.why[1]


@pytest.mark.parametrize(("flag", "float32", "bfloat16", "dtype"), [
    ("amx_bf16", 0.03, 0.01, torch.bfloat16),  # AMX: 3x faster, chosen
    ("avx512_bf16", 0.02, 0.019, torch.float32),  # native but no faster: not worth it
])  # fmt: skip
def test_cpu_with_native_bfloat16_takes_it_where_it_measures_faster(
    cpu_only, monkeypatch, flag, float32, bfloat16, dtype
):
    monkeypatch.setattr(devices, "cpu_flags", lambda: {"avx2", flag})
    seconds = {torch.float32: float32, torch.bfloat16: bfloat16}
    monkeypatch.setattr(devices, "_matmul_seconds", lambda d: seconds[d])
    choice = devices.choose()
    assert choice.dtype == dtype and f"{float32 / bfloat16:.1f}x" in choice.why[1]


def test_cpu_probe_really_runs_both_precisions():
    assert devices._matmul_seconds(torch.float32, repeats=1) > 0
    assert devices._matmul_seconds(torch.bfloat16, repeats=1) > 0


def test_unknown_names_are_option_errors():
    with pytest.raises(OptionsError) as error:
        ModelOptions("256M", attention="flash")
    assert error.value.option == "attention"
    with pytest.raises(OptionsError, match="dtype must be one of"):
        devices.choose("cpu", "int8")
    with pytest.raises(OptionsError) as error:
        ModelOptions("256M", vision="all")
    assert error.value.option == "vision"
