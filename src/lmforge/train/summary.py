"""The end-of-training summary: throughput defined from counted tokens, model FLOP/s and MFU, peak memory."""

import resource
import sys
from typing import Any

import torch
from rich.table import Table

from lmforge.errors import ModelError
from lmforge.train.callbacks import EVAL_FIGURES
from lmforge.train.flops import DecoderShape, training_flops_per_token
from lmforge.train.peak import peak_flops
from lmforge.train.trainer import TokenCounts


def peak_memory_mib() -> tuple[float, str]:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20, "GPU allocated"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / (2**20 if sys.platform == "darwin" else 2**10), "process RSS"


def utilisation(model_config: Any, counts: TokenCounts, runtime_s: float, *, finetuning_type: str,
                trainable: int, dtype: torch.dtype) -> dict[str, Any]:
    """Model FLOPs per token (`train/flops.py`'s convention), the FLOP/s the run achieved and its MFU against
    this device's peak for `dtype` (`train/peak.py`); `mfu_unavailable` says why when they cannot be given."""
    if not counts.non_pad_tokens:
        return {"mfu": None, "mfu_unavailable": "this stage's trainer (trl's, or ppo's) does not count its tokens"}
    try:
        shape = DecoderShape.from_config(model_config)
    except ModelError as err:
        return {"mfu": None, "mfu_unavailable": str(err)}
    adapter = {"full": None, "lora": trainable}.get(finetuning_type, 0)
    trained_base = trainable if finetuning_type == "freeze" else 0
    per_token = training_flops_per_token(shape, counts.attention_context(), adapter_params=adapter,
                                         trained_base_params=trained_base)
    achieved = counts.non_pad_tokens / max(runtime_s, 1e-9) * per_token
    device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    peak, source = peak_flops(device, dtype, achieved=achieved)
    return {"flops_per_token": round(per_token), "model_tflops_per_s": round(achieved / 1e12, 4),
            "peak_tflops_per_s": round(peak / 1e12, 3), "peak_dtype": str(dtype).removeprefix("torch."),
            "peak_source": source, "mfu": round(achieved / peak, 4)}


def training_summary(metrics: dict[str, Any], counts: TokenCounts, log_history: list[dict[str, Any]],
                     steps: int, trainable: int, total: int,
                     flop_rates: dict[str, Any] | None = None) -> dict[str, Any]:
    runtime = max(float(metrics.get("train_runtime", 0.0)), 1e-9)
    losses = [entry["loss"] for entry in log_history if "loss" in entry]
    memory, memory_kind = peak_memory_mib()
    samples_per_s = counts.samples / runtime if counts.samples else float(metrics.get("train_samples_per_second", 0))
    return {
        "steps": steps,
        "train_runtime_s": round(runtime, 3),
        # the totals every process trained (the rates below divide them by the runtime)
        "trained_samples": counts.samples,
        "trained_supervised_tokens": counts.supervised_tokens,
        "samples_per_s": round(samples_per_s, 3),
        "input_tokens_per_s": round(counts.input_tokens / runtime, 1),
        "non_pad_tokens_per_s": round(counts.non_pad_tokens / runtime, 1),
        "supervised_tokens_per_s": round(counts.supervised_tokens / runtime, 1),
        "peak_memory_mib": round(memory, 1),
        "peak_memory_kind": memory_kind,
        "final_loss": round(losses[-1], 4) if losses else round(float(metrics.get("train_loss", 0.0)), 4),
        "trainable_params": trainable,
        "total_params": total,
        **(flop_rates or {}),
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
    if summary.get("mfu") is not None:
        rows.insert(6, ("model FLOP/s", f"{summary['model_tflops_per_s']:.3g} TFLOP/s, MFU {summary['mfu']:.1%} of "
                                        f"{summary['peak_tflops_per_s']:.3g} TFLOP/s {summary['peak_dtype']} "
                                        f"({summary['peak_source']})"))
    elif summary.get("mfu_unavailable"):
        rows.insert(6, ("MFU", f"not given: {summary['mfu_unavailable']}"))
    counted = summary["input_tokens_per_s"] > 0  # stages on trl trainers do not count tokens
    for name, value in rows:
        if counted or "tokens/s" not in name:
            table.add_row(name, value)
    return table
