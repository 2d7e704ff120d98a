"""The end-of-training summary: throughput defined from counted tokens, and peak memory."""

import resource
import sys
from typing import Any

import torch
from rich.table import Table

from lmforge.train.callbacks import EVAL_FIGURES
from lmforge.train.trainer import TokenCounts


def peak_memory_mib() -> tuple[float, str]:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20, "GPU allocated"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (2**20 if sys.platform == "darwin" else 2**10), "process RSS"


def training_summary(metrics: dict[str, Any], counts: TokenCounts, log_history: list[dict[str, Any]],
                     steps: int, trainable: int, total: int) -> dict[str, Any]:
    runtime = max(float(metrics.get("train_runtime", 0.0)), 1e-9)
    losses = [entry["loss"] for entry in log_history if "loss" in entry]
    memory, memory_kind = peak_memory_mib()
    samples_per_s = counts.samples / runtime if counts.samples else float(metrics.get("train_samples_per_second", 0))
    return {
        "steps": steps,
        "train_runtime_s": round(runtime, 2),
        "samples_per_s": round(samples_per_s, 3),
        "input_tokens_per_s": round(counts.input_tokens / runtime, 1),
        "non_pad_tokens_per_s": round(counts.non_pad_tokens / runtime, 1),
        "supervised_tokens_per_s": round(counts.supervised_tokens / runtime, 1),
        "peak_memory_mib": round(memory, 1),
        "peak_memory_kind": memory_kind,
        "final_loss": round(losses[-1], 4) if losses else round(float(metrics.get("train_loss", 0.0)), 4),
        "trainable_params": trainable,
        "total_params": total,
    }


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title="training summary", show_header=False)
    steps = f"{summary['steps']}"
    if "steps_this_run" in summary:  # a resumed run
        steps = f"{summary['steps_this_run']} this run, {summary['steps']} in total"
    rows = [
        ("steps", steps),
        ("runtime", f"{summary['train_runtime_s']:.1f} s"),
        ("samples/s", f"{summary['samples_per_s']:.2f}"),
        ("input tokens/s", f"{summary['input_tokens_per_s']:,.0f}"),
        ("non-pad tokens/s", f"{summary['non_pad_tokens_per_s']:,.0f}"),
        ("supervised tokens/s", f"{summary['supervised_tokens_per_s']:,.0f}"),
        ("peak memory", f"{summary['peak_memory_mib']:,.0f} MiB ({summary['peak_memory_kind']})"),
        ("final loss", f"{summary['final_loss']:.4f}"),
        ("trainable params", f"{summary['trainable_params']:,} of {summary['total_params']:,}"),
        *((f"eval {name}", f"{summary[key]:,.4f}") for key, name in EVAL_FIGURES if key in summary),
    ]
    counted = summary["input_tokens_per_s"] > 0  # stages on trl trainers do not count tokens
    for name, value in rows:
        if counted or "tokens/s" not in name:
            table.add_row(name, value)
    return table
