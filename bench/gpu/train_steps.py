"""The suite's training steps, each through lmforge's own path: `lmforge train` (and `lmforge export`)
on a YAML config, throughput read back from the run's train_summary.json and trainer_log.jsonl.

Tokens/s is steady-state: non-padding tokens trained between the first and the last log line (steps
5 and 20), over the time between them, so start-up (CUDA context, first kernels, the optimizer's state)
stays out; the whole run's figure from train_summary.json is recorded beside it. MFU follows
`lmforge.train.flops` (6N full, 4N + 6 x adapter for LoRA, attention within each packed sequence).
"""

import json
import os
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import yaml

from bench.gpu.plan import ROOT_DIR, TRAINING_RUNS, Context, qlora_export_config, train_config


def lmforge_cli(*args: str, env: dict[str, str] | None = None) -> int:
    """`lmforge ...` in a child process; its output goes to this step's log."""
    command = [sys.executable, "-m", "lmforge.cli.main", *args]
    print("$", " ".join(command), flush=True)
    return subprocess.run(command, cwd=ROOT_DIR, env=env, check=False).returncode


def steady_tokens_per_s(log_path: Path, key: str = "non_pad_tokens_per_s") -> float | None:
    """Tokens per second between the first and the last training log line (cumulative figures there)."""
    lines = [json.loads(line) for line in log_path.read_text().splitlines()] if log_path.is_file() else []
    records = [line for line in lines if "loss" in line and key in line]
    if len(records) < 2 or records[-1]["elapsed_s"] <= records[0]["elapsed_s"]:
        return None
    first, last = records[0], records[-1]
    tokens = last[key] * last["elapsed_s"] - first[key] * first["elapsed_s"]
    return tokens / (last["elapsed_s"] - first["elapsed_s"])


def flops_figures(ctx: Context, size: str, method: str, summary: dict[str, Any], tokens_per_s: float | None
                  ) -> dict[str, Any]:
    import torch
    from transformers import AutoConfig

    from lmforge.train.flops import DecoderShape, mfu, packed_context, peak_bf16_flops, training_flops_per_token

    shape = DecoderShape.from_config(AutoConfig.from_pretrained(ctx.model_dir(size)))
    lengths = json.loads((ctx.data / "lengths.json").read_text())
    context = packed_context(lengths)
    adapter = summary["trainable_params"] if method == "lora" else None
    per_token = training_flops_per_token(shape, context, adapter_params=adapter)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    peak = peak_bf16_flops(device)
    figures: dict[str, Any] = {"flops_per_token": per_token, "attention_context": round(context, 1),
                               "matmul_params": shape.matmul_params, "device": device, "peak_bf16_flops": peak}
    figures["mfu"] = round(mfu(tokens_per_s, per_token, peak), 4) if peak and tokens_per_s else None
    return figures


def run_training(ctx: Context, step: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The step's `lmforge train` run and its figures; the trained weights are deleted afterwards (the disk
    is RAM)."""
    run = TRAINING_RUNS[step]
    folder = ctx.runs / run.folder
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "out"
    config = train_config(ctx, run.size, run.method, out, **dict(run.extra))
    (folder / "train.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    code = lmforge_cli("train", str(folder / "train.yaml"), env=env)
    summary_path = out / "train_summary.json"
    if code != 0 or not summary_path.is_file():
        return {"status": "failed", "why": f"lmforge train exited {code} (see the log)"}
    summary = json.loads(summary_path.read_text())
    steady = steady_tokens_per_s(out / "trainer_log.jsonl")
    for weights in out.glob("*.safetensors"):
        weights.unlink()
    result = {"status": "ok", "model": ctx.model_name(run.size), "method": run.method, "steps": summary["steps"],
              "tokens_per_s": round(steady, 1) if steady else None,
              "tokens_per_s_whole_run": summary["non_pad_tokens_per_s"],
              "peak_memory_mib": summary["peak_memory_mib"], "peak_memory_kind": summary["peak_memory_kind"],
              "final_loss": summary["final_loss"], "trainable_params": summary["trainable_params"],
              "total_params": summary["total_params"], "bf16": bool(config.get("bf16")),
              "tokens_per_step": config["per_device_train_batch_size"] * ctx.cutoff}
    result.update(flops_figures(ctx, run.size, run.method, summary, steady))
    return result


def step_qlora(ctx: Context) -> dict[str, Any]:
    """LoRA on a 4-bit (nf4) base, then `lmforge export` of the merged model re-quantized to 4 bits."""
    if find_spec("bitsandbytes") is None:
        return {"status": "skipped", "why": "bitsandbytes is not installed (fetch_wheels.py --groups qlora)"}
    result = run_training(ctx, "qlora")
    if result["status"] != "ok":
        return result
    folder = ctx.runs / TRAINING_RUNS["qlora"].folder
    config_path = folder / "export.yaml"
    config_path.write_text(yaml.safe_dump(qlora_export_config(ctx, folder / "out", folder / "export"), sort_keys=False))
    code = lmforge_cli("export", str(config_path))
    result["export_4bit"] = "ok" if code == 0 else f"failed: lmforge export exited {code} (see the log)"
    if code != 0:
        result.update(status="failed", why="the 4-bit export failed")
    return result


def step_liger(ctx: Context) -> dict[str, Any]:
    if find_spec("liger_kernel") is None:
        return {"status": "skipped", "why": "liger-kernel is not installed (fetch_wheels.py --groups liger)"}
    return run_training(ctx, "liger")


def step_zero3(ctx: Context) -> dict[str, Any]:
    """Full SFT under ZeRO-3 as a one-process job: `lmforge train` gives it its process group of one itself."""
    if find_spec("deepspeed") is None:
        return {"status": "skipped", "why": "deepspeed is not installed (fetch_wheels.py --groups zero)"}
    return run_training(ctx, "zero3", env={**os.environ, "DS_ACCELERATOR": "cuda"})
