"""The peak matmul rate of this machine for a dtype: what MFU is measured against.

A GPU's is its datasheet dense rate where lmforge knows it (`flops.PEAK_BF16_DENSE`, bf16), else it is
measured. A CPU's is measured: the best rate of a short square matmul (`PROBE_SIZE`, about a second in
all) at the thread count torch uses, so the figure is what this machine's torch reaches, not a vendor's
theoretical rate (which it never reaches on a CPU). A measurement is cached in
`$LMFORGE_HOME/peak_flops.json`, keyed by device model, thread count, torch version and dtype: the next
run on the machine reads it. A process also remembers what it measured, so that a second training in it (or a
home without the file, or a read-only one) does not probe again. A probe that ran while something else held a
core (a busy neighbour on a shared host) reads low, and a low figure cached would inflate every later MFU: a peak
below what a run achieved is measured again, and the cache keeps the highest measurement.
"""

import json
import time
from pathlib import Path

import torch

from lmforge.paths import lmforge_home
from lmforge.train.flops import peak_bf16_flops
from lmforge.train.precision import cpu_name

PROBE_SIZE = 2048  # n x n x n: 17 GFLOP a product, from ~5 ms (AMX bf16) to ~0.2 s (one slow core in fp32)
PROBE_SECONDS = 0.5  # products are repeated for at least this long after a warm-up; the best one counts
CACHE_FILE = "peak_flops.json"
_MEASURED_IN_THIS_PROCESS: dict[str, float] = {}


def device_key(device: torch.device, dtype: torch.dtype) -> str:
    """What a measured peak depends on: the device model, the threads (CPU), torch's version and the dtype."""
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = f"{cpu_name()} x{torch.get_num_threads()} threads"
    return f"{where} | torch {torch.__version__} | {str(dtype).removeprefix('torch.')}"


def probe_matmul_flops(device: torch.device, dtype: torch.dtype, size: int = PROBE_SIZE,
                       seconds: float = PROBE_SECONDS) -> float:
    """The best FLOP/s of `size`-square products in `dtype` on `device` over about `seconds`."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    out = torch.empty(size, size, device=device, dtype=dtype)

    def timed() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    timed()  # the first call chooses and builds its kernel
    best, spent, runs = float("inf"), 0.0, 0
    while spent < seconds or runs < 3:
        elapsed = timed()
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
    return 2.0 * size**3 / best


def peak_flops(device: torch.device, dtype: torch.dtype, cache: Path | None = None,
               achieved: float = 0.0) -> tuple[float, str]:
    """(peak FLOP/s, where it comes from: "datasheet", "measured" or "measured, cached") for `dtype` on `device`;
    `achieved`: the FLOP/s a run reached, which a known peak below it is measured again for."""
    if device.type == "cuda" and dtype == torch.bfloat16:
        listed = peak_bf16_flops(torch.cuda.get_device_name(device))
        if listed is not None:
            return listed, "datasheet"
    path = cache or lmforge_home() / CACHE_FILE
    key = device_key(device, dtype)
    try:
        known = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):  # an unreadable cache is measured again and rewritten
        known = {}
    cached = known.get(key)
    if isinstance(cached, int | float) and cached >= achieved:
        return float(cached), "measured, cached"
    remembered = _MEASURED_IN_THIS_PROCESS.get(key)
    source = "measured, cached" if remembered is not None else "measured"
    if remembered is None or remembered < achieved:
        source = "measured"
        remembered = max(remembered or 0.0, probe_matmul_flops(device, dtype))
    measured = max(remembered, cached if isinstance(cached, int | float) else 0.0)
    _MEASURED_IN_THIS_PROCESS[key] = measured
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**known, key: measured}, indent=1, sort_keys=True) + "\n")
    except OSError:  # a read-only home still gets its figure, measured once per process
        pass
    return measured, source
