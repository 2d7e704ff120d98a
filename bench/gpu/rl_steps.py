"""The suite's online RL steps: GRPO LoRA steps on the 0.5B model through `lmforge train`, with the rollouts
batched through transformers' `generate` on the training GPU (`grpo`: what the image runs as it is), and again in
vLLM colocated on that GPU (`use_vllm`; `grpo-vllm`, skipped where vLLM is not installed). The dry run runs the
first on the CPU with the tiny model, 2 steps of 16-token completions.

Step time is the median of trl's own `step_time` over the logged steps after the first (start-up, and vLLM's
first weight sync, stay out); rollout tokens/s is the completions' tokens of a step (the batch x their mean length)
over that step time, so it counts the whole step, training included: a lower bound on the rollout engine's rate.
"""

import json
import statistics
from importlib.util import find_spec
from typing import Any

import yaml

from bench.gpu.plan import Context, train_config
from bench.gpu.train_steps import lmforge_cli

BATCH = 8  # completions per step: 2 prompts x 4 generations


def grpo_config(ctx: Context, out: Any, use_vllm: bool = False) -> dict[str, Any]:
    steps, length = (2, 16) if ctx.dry_run else (6, 64)
    config = train_config(ctx, "0.5b", "lora", out, stage="grpo", packing=False, per_device_train_batch_size=BATCH,
                          max_steps=steps, logging_steps=1, learning_rate=1.0e-5, reward_funcs="length",
                          reward_length_target=20, num_generations=4, max_completion_length=length)
    if use_vllm:
        config.update(use_vllm=True, vllm_gpu_util=0.3)
    config.pop("packing")
    return config


def _run_grpo(ctx: Context, folder_name: str, use_vllm: bool) -> dict[str, Any]:
    folder = ctx.runs / folder_name
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "out"
    (folder / "train.yaml").write_text(yaml.safe_dump(grpo_config(ctx, out, use_vllm), sort_keys=False))
    code = lmforge_cli("train", str(folder / "train.yaml"))
    log = out / "trainer_log.jsonl"
    if code != 0 or not log.is_file():
        return {"status": "failed", "why": f"lmforge train exited {code} (see the log)"}
    records = [line for line in map(json.loads, log.read_text().splitlines()) if "step_time" in line]
    if not records:
        return {"status": "failed", "why": f"no step_time in {log}: trl logged no GRPO step"}
    summary_path = out / "train_summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    steady = records[1:] or records
    step_s = statistics.median(record["step_time"] for record in steady)
    length = statistics.median(record["completions/mean_length"] for record in steady)
    return {"status": "ok", "model": ctx.model_name("0.5b"), "rollouts": "vllm" if use_vllm else "generate",
            "steps": len(records), "step_s": round(step_s, 3),
            "rollout_tokens_per_s": round(BATCH * length / step_s, 1), "completion_mean_length": length,
            "reward_first": records[0]["reward"], "reward_last": records[-1]["reward"],
            "peak_memory_mib": summary.get("peak_memory_mib"), "peak_memory_kind": summary.get("peak_memory_kind")}


def step_grpo(ctx: Context) -> dict[str, Any]:
    return _run_grpo(ctx, "grpo-0.5b", use_vllm=False)


def step_grpo_vllm(ctx: Context) -> dict[str, Any]:
    if find_spec("vllm") is None:
        return {"status": "skipped", "why": "vllm is not installed (GRPO's colocated rollouts need it)"}
    return _run_grpo(ctx, "grpo-vllm-0.5b", use_vllm=True)
