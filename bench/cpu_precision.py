"""What each precision costs on this CPU, and what lmforge trains in when a config asks for it.

For fp32, bf16 and fp16: the CPU's flags for that arithmetic in hardware (/proc/cpuinfo), the matmul rate torch
reaches (`train/peak.py`'s probe: the best of 1,024-square products over about a second, at the thread count
torch uses, then at one thread) and the dtype `lmforge train` computes in for `bf16: true` / `fp16: true` /
neither (`train/precision.compute_dtype`). Where a half type has no hardware arithmetic torch emulates it, tens of
times slower than fp32: lmforge then trains in fp32 (the ratio column is the half type's rate over fp32's).

Usage: python bench/cpu_precision.py
"""

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import machine
from lmforge.config import build_config
from lmforge.train import precision
from lmforge.train.peak import probe_matmul_flops

SIZE = 1024  # emulated bf16 runs 2,048-square products at ~1 GFLOP/s: 17 s each
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
ASKED = {"fp32": {"bf16": False}, "bf16": {"bf16": True}, "fp16": {"fp16": True}}


def hardware(name: str) -> str:
    wanted = {"bf16": precision.FAST_BF16_FLAGS, "fp16": precision.FAST_FP16_FLAGS}.get(name)
    if wanted is None:
        return "yes"
    flags = precision.listed_cpu_flags(precision.read_cpuinfo(), wanted)
    return ", ".join(flags) or "none (emulated)"


def main() -> None:
    print(f"{machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads; load {os.getloadavg()[0]:.1f}")
    print(f"{'dtype':<6} {'hardware arithmetic':<26} {'GFLOP/s':>9} {'1 thread':>9} {'vs fp32':>8}  "
          f"{'lmforge trains in':<18}")
    rates: dict[str, float] = {}
    threads = torch.get_num_threads()
    for name, dtype in DTYPES.items():
        rate = probe_matmul_flops(torch.device("cpu"), dtype, SIZE, seconds=1.0) / 1e9
        torch.set_num_threads(1)
        single = probe_matmul_flops(torch.device("cpu"), dtype, SIZE, seconds=1.0) / 1e9
        torch.set_num_threads(threads)
        rates[name] = rate
        trains = str(precision.compute_dtype(build_config(ASKED[name]))).removeprefix("torch.")
        print(f"{name:<6} {hardware(name):<26} {rate:>9.1f} {single:>9.1f} {rate / rates['fp32']:>7.3f}x  {trains:<18}")


if __name__ == "__main__":
    main()
