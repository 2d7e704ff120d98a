"""Where an SFT step's time goes: one `lmforge train` run with the torch profiler, its trace summed by kind.

The job is bench/train_throughput.py's (alpaca_en_demo, LoRA rank 8 on all linear layers or full, packed,
cutoff 512 x batch 4 or 2048 x 1), on `--model` (default the real SmolLM2-135M), in `--precision` (bf16
autocast by default); or `--job quickstart`: `make quickstart`'s own training config (bench/quickstart.py reads
it from the Makefile; its model, data and precision, only the profiler's keys added). The profiler skips one
step, warms up on one and records `--active` steps; the Chrome trace it writes is read back here and each
operator's self time (its time minus its children's) is put in one bucket: matrix multiplications, attention,
output head + loss, optimizer step, data loading, other elementwise/copy work, split into forward and backward
(autograd) where it applies.

`--memory` also records allocations and prints the tensors alive at the recorded steps' peak, by the operator
that allocated them (the figures of BENCHMARKS.md's full fine-tuning memory notes).

Usage: python bench/profile_sft.py [--model smollm2|alpaca-bpe] [--job lora-packed|full-packed|quickstart]
                                  [--cutoff 512|2048] [--precision bf16|fp32] [--active 2] [--memory]
"""

import argparse
import gzip
import json
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import machine
from bench.quickstart import quickstart_commands, training_config
from bench.train_throughput import JOBS, MODELS, TEMPLATES, job_config, run

MATMUL = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear",
          "aten::_weight_int8pack_mm", "mkldnn", "onednn")
ATTENTION = ("scaled_dot_product", "flash_attention", "_efficient_attention", "aten::_softmax", "flex_attention")
# "crossentropy": lmforge's own autograd functions (_TokenCrossEntropy, _HeadCrossEntropy: the head's products too)
LOSS = ("cross_entropy", "crossentropy", "log_softmax", "nll_loss", "logsumexp", "chunked")


def bucket(name: str, ancestors: list[str]) -> str:
    """The kind of work an operator's self time is, from its own name and the ranges around it."""
    joined = " ".join(ancestors)
    if "Optimizer.step" in joined or "Optimizer.zero_grad" in joined:
        return "optimizer step"
    if "enumerate(DataLoader)" in joined or "DataLoader" in name:
        return "data loading"
    direction = "backward" if "autograd::engine" in joined or "Backward" in name else "forward"
    lowered = name.lower()
    if any(key in lowered for key in ATTENTION) or any(key in a.lower() for a in ancestors for key in ATTENTION):
        return f"attention ({direction})"
    if any(key in lowered for key in LOSS) or any(key in a.lower() for a in ancestors for key in LOSS):
        return f"output head + loss ({direction})"
    if any(key in lowered for key in MATMUL):
        return f"matmul ({direction})"
    return f"elementwise/copy/other ({direction})"


def self_times(trace: dict) -> tuple[dict[str, float], dict[str, float], dict[str, int], float]:
    """Self time (us) per bucket and per operator name, calls per operator name, and the recorded steps' wall
    time, from a Chrome trace."""
    by_thread: dict[tuple, list[dict]] = defaultdict(list)
    steps = 0.0
    for event in trace.get("traceEvents", []):
        if event.get("ph") != "X" or "dur" not in event:
            continue
        if event.get("name", "").startswith("ProfilerStep#"):
            steps += event["dur"]
            continue
        if event.get("cat") in ("cpu_op", "user_annotation", "python_function"):
            by_thread[(event.get("pid"), event.get("tid"))].append(event)
    buckets: dict[str, float] = defaultdict(float)
    names: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    for events in by_thread.values():
        events.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack: list[dict] = []
        children: dict[int, float] = defaultdict(float)
        for index, event in enumerate(events):
            event["_index"] = index
            while stack and stack[-1]["ts"] + stack[-1]["dur"] <= event["ts"]:
                stack.pop()
            if stack:
                children[stack[-1]["_index"]] += event["dur"]
            event["_ancestors"] = [e["name"] for e in stack]
            stack.append(event)
        for event in events:
            own = max(event["dur"] - children[event["_index"]], 0.0)
            buckets[bucket(event["name"], event["_ancestors"])] += own
            names[event["name"]] += own
            calls[event["name"]] += 1
    return buckets, names, calls, steps


def live_at_peak(trace: dict) -> tuple[float, list[tuple[str, float, int]]]:
    """From a trace recorded with `profiler_profile_memory`: the most CPU memory the recorded steps' tensors held at
    once (MiB), and what was alive then, by the operator that allocated it (name and input shapes): (label, MiB,
    allocations), largest first; allocations under 1 MiB are summed as one line."""
    events = sorted((e for e in trace.get("traceEvents", []) if e.get("name") == "[memory]"
                     and e.get("args", {}).get("Device Type") == 0), key=lambda e: e["ts"])
    if not events:
        return 0.0, []
    peak = max(events, key=lambda e: e["args"]["Total Allocated"])
    alive: dict[int, tuple[int, float, Any]] = {}
    for event in events:
        if event["ts"] > peak["ts"]:
            break
        args = event["args"]
        if args["Bytes"] > 0:
            alive[args["Addr"]] = (args["Bytes"], event["ts"], event.get("tid"))
        else:
            alive.pop(args["Addr"], None)
    ops = defaultdict(list)
    for event in trace["traceEvents"]:
        if event.get("ph") == "X" and event.get("cat") == "cpu_op":
            ops[event.get("tid")].append(event)
    groups: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for size, ts, tid in alive.values():
        label = "(allocations under 1 MiB)"
        if size >= 1 << 20:
            around = [o for o in ops[tid] if o["ts"] <= ts <= o["ts"] + o["dur"]]
            inner = min(around, key=lambda o: o["dur"]) if around else None
            label = f"{inner['name']} {inner.get('args', {}).get('Input Dims', '')}" if inner else "?"
        groups[label][0] += size / 2**20
        groups[label][1] += 1
    rows = sorted(((label, mib, int(count)) for label, (mib, count) in groups.items()), key=lambda r: -r[1])
    return peak["args"]["Total Allocated"] / 2**20, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(MODELS), default="smollm2")
    parser.add_argument("--job", choices=("lora-packed", "full-packed", "quickstart"), default="lora-packed")
    parser.add_argument("--cutoff", type=int, choices=(512, 2048), default=512)
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--active", type=int, default=2, help="steps recorded")
    parser.add_argument("--memory", action="store_true",
                        help="also record allocations: the tensors alive at the recorded steps' peak, by operator")
    options = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="profile-sft-"))
    if options.job == "quickstart":
        config = training_config(quickstart_commands()[0], out)
    else:
        config = job_config("lmforge", JOBS[options.job], MODELS[options.model](), 400, out, options.cutoff,
                            TEMPLATES.get(options.model, "qwen"), bf16=options.precision == "bf16")
    config.update(max_steps=2 + options.active, enable_torch_profiler=True, profiler_wait_steps=1,
                  profiler_warmup_steps=1, profiler_active_steps=options.active, profiler_with_stack=False,
                  profiler_profile_memory=options.memory, profiler_record_shapes=options.memory, warmup_ratio=0.0)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    load = os.getloadavg()[0]
    summary = run("lmforge", "", config, env)
    trace_files = sorted((out / "profiler").rglob("*.json*"))
    if not trace_files:
        sys.exit(f"no trace under {out / 'profiler'}")
    opener = gzip.open if trace_files[-1].suffix == ".gz" else open
    with opener(trace_files[-1], "rt") as handle:
        trace = json.load(handle)
    buckets, names, calls, steps_us = self_times(trace)
    total = sum(buckets.values())
    job = "make quickstart's training" if options.job == "quickstart" else \
        f"{options.model} {options.job}, cutoff {options.cutoff}, {options.precision}"
    print(f"{job}; {options.active} recorded "
          f"steps, {steps_us / 1e6 / options.active:.2f} s/step; MFU of the whole run {summary.get('mfu') or 0:.1%}; "
          f"{machine()}; load {load:.1f}")
    print(f"{'kind of work':<40} {'s/step':>8} {'share':>7}")
    for name, micros in sorted(buckets.items(), key=lambda item: -item[1]):
        print(f"{name:<40} {micros / 1e6 / options.active:>8.3f} {micros / total:>7.1%}")
    print(f"\ntop operators by self time ({sum(calls.values()) / options.active:,.0f} profiled ranges a step)")
    print(f"{'operator':<60} {'s/step':>8} {'share':>7} {'calls/step':>11} {'us/call':>8}")
    for name, micros in sorted(names.items(), key=lambda item: -item[1])[:25]:
        print(f"{name[:60]:<60} {micros / 1e6 / options.active:>8.3f} {micros / total:>7.1%} "
              f"{calls[name] / options.active:>11,.0f} {micros / calls[name]:>8.1f}")
    if options.memory:
        peak, rows = live_at_peak(trace)
        print(f"\ntensors alive at the recorded steps' peak: {peak:,.0f} MiB (weights, gradients and optimizer state "
              "made before the recorded steps not counted)")
        for label, mib, count in rows[:15]:
            print(f"{mib:>9,.1f} MiB  x{count:<4} {label[:100]}")


if __name__ == "__main__":
    main()
