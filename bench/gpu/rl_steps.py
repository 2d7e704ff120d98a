"""The suite's online RL step: GRPO with its rollouts in vLLM colocated on the training GPU (`use_vllm`),
through `lmforge train` on the 0.5B model and the suite's prompts; skipped where vLLM is not installed.

Step time is the median of trl's own `step_time` over the logged steps after the first (vLLM's start-up and
first weight sync stay out); rollout tokens/s is the completions' tokens of a step (the batch x their mean
length) over that step time, so it counts the whole step, training included: a lower bound on vLLM's rate.
"""

import json
import statistics
from importlib.util import find_spec
from typing import Any

import yaml

from bench.gpu.plan import Context, train_config
from bench.gpu.train_steps import lmforge_cli

BATCH = 8  # completions per step: 2 prompts x 4 generations


def grpo_config(ctx: Context, out: Any) -> dict[str, Any]:
    config = train_config(ctx, "0.5b", "lora", out, stage="grpo", packing=False, per_device_train_batch_size=BATCH,
                          max_steps=6, logging_steps=1, learning_rate=1.0e-5, reward_funcs="length",
                          reward_length_target=20, num_generations=4, max_completion_length=64, use_vllm=True,
                          vllm_gpu_util=0.3)
    config.pop("packing")
    return config


def step_grpo_vllm(ctx: Context) -> dict[str, Any]:
    if find_spec("vllm") is None:
        return {"status": "skipped", "why": "vllm is not installed (GRPO's colocated rollouts need it)"}
    folder = ctx.runs / "grpo-vllm-0.5b"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "out"
    config = grpo_config(ctx, out)
    (folder / "train.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    code = lmforge_cli("train", str(folder / "train.yaml"))
    log = out / "trainer_log.jsonl"
    if code != 0 or not log.is_file():
        return {"status": "failed", "why": f"lmforge train exited {code} (see the log)"}
    records = [line for line in map(json.loads, log.read_text().splitlines()) if "step_time" in line]
    steady = records[1:] or records
    step_s = statistics.median(record["step_time"] for record in steady)
    length = statistics.median(record["completions/mean_length"] for record in steady)
    return {"status": "ok", "model": ctx.model_name("0.5b"), "steps": len(records), "step_s": round(step_s, 3),
            "rollout_tokens_per_s": round(BATCH * length / step_s, 1), "completion_mean_length": length,
            "reward_first": records[0]["reward"], "reward_last": records[-1]["reward"]}
