"""bfloat16 against float32 on this CPU, and what `--dtype auto` picks here.

    python benchmarks/cpu_precision.py [--threads N]

Times the product `smolvlm_video.model.devices` probes with (256 tokens through a 576 x 2304 layer, the
256M model's MLP up-projection; best of 5) in both precisions, whether or not the CPU has native
bfloat16, and prints the CPU's bfloat16 flags and auto's choice with its reason.
"""

from __future__ import annotations

import argparse
import platform

import torch

from smolvlm_video.model import devices


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    float32 = devices._matmul_seconds(torch.float32)
    bfloat16 = devices._matmul_seconds(torch.bfloat16)
    flags = sorted(devices.cpu_flags() & {*devices.CPU_BFLOAT16_FLAGS, "avx512f", "avx2"})
    print(
        f"CPU: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, flags {flags}"
    )
    print(f"float32 {1000 * float32:.2f} ms, bfloat16 {1000 * bfloat16:.2f} ms: bfloat16 runs at "
          f"{float32 / bfloat16:.2f}x float32's speed")  # fmt: skip
    choice = devices.choose("cpu")
    print(f"auto picks {choice.why[1]}")


if __name__ == "__main__":
    main()
