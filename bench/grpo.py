"""GRPO step time and rollout tokens/s: lmforge's `stage: grpo` trainer vs trl's GRPOTrainer used directly, on
the same prompts (examples/data/rl_math.json rendered by the model's template), model, config and seed, in
the same process, alternating sides run by run.

    HF_HUB_OFFLINE=1 python bench/grpo.py --model smollm2 --runs 3 --steps 3
    HF_HUB_OFFLINE=1 python bench/grpo.py --model tiny-llama --record   # append the rows to BENCHMARKS.md

Each run builds a fresh model and trainer and trains `--steps` steps; the first step is warm-up and not
counted. Step time is trl's own `step_time` (generation, scoring and the optimizer step); rollout tokens/s
is the completion tokens generated per second of `generate` (timed on the one model instance of each side).
The CPU seconds of each step (all threads of the process) are printed too: on a shared machine the wall
time follows the other jobs' load, the CPU time much less, so a difference in work shows there first.
`--threads 1` takes torch's thread synchronisation out: on 2 cores shared with other jobs, a one-token
decoding product at 2 threads waits for a descheduled thread (~70 ms where 1 thread takes ~2.4 ms).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from transformers import TrainerCallback

from bench.common import ROOT, append_benchmark_row, machine, median_range, today

MODELS = {"smollm2": ("builtin:smollm2-135m-instruct", "smollm2"), "tiny-llama": ("builtin:tiny-llama", "chatml")}
SECTION = "GRPO step time (rl_math prompts, CPU): lmforge vs trl's GRPOTrainer"
HEADER = ("| date | model | job | lmforge s/step | trl s/step | ratio (trl/lmforge) | lmforge rollout tok/s | "
          "trl rollout tok/s | machine | versions |\n|---|---|---|---|---|---|---|---|---|---|")


class TimedGenerate:
    """`generate` of one model instance, timed, with the completion tokens it produced."""

    def __init__(self, model: Any) -> None:
        self.inner, self.seconds, self.tokens = model.generate, 0.0, 0
        model.generate = self  # this instance only

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = self.inner(*args, **kwargs)
        self.seconds += time.perf_counter() - start
        self.tokens += out.shape[0] * (out.shape[1] - kwargs["input_ids"].shape[1])
        return out


def config(model: str, template: str, out: str, args: argparse.Namespace) -> Any:
    from lmforge.config import build_config

    return build_config({
        "model_name_or_path": model, "template": template, "stage": "grpo", "finetuning_type": "lora",
        "lora_rank": 8, "lora_target": "all", "fused_lora": True, "dataset": "rl_math",
        "dataset_dir": str(ROOT / "examples" / "data"), "reward_funcs": "accuracy", "num_generations": 4,
        "per_device_train_batch_size": args.batch, "max_completion_length": args.tokens, "beta": 0.0,
        "learning_rate": 1e-4, "max_steps": args.steps, "logging_steps": 1, "save_strategy": "no",
        "report_to": "none", "seed": 0, "output_dir": out})


class CpuSeconds(TrainerCallback):
    """The process's CPU seconds (all threads) of each optimizer step."""

    def __init__(self) -> None:
        self.start, self.steps = 0.0, []

    def on_step_begin(self, *args: Any, **kwargs: Any) -> None:
        self.start = time.process_time()

    def on_step_end(self, *args: Any, **kwargs: Any) -> None:
        self.steps.append(time.process_time() - self.start)


def run_side(side: str, cfg: Any) -> tuple[list[float], list[float], float]:
    """(wall seconds, CPU seconds) of each step after the first, and the rollout tokens/s."""
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lmforge.data.dataset import build_datasets
    from lmforge.data.templates.encoding import stop_token_ids
    from lmforge.data.templates.select import run_template
    from lmforge.hub.resolve import resolve_model_path
    from lmforge.model.adapters import apply_finetuning
    from lmforge.model.loading import load_model, model_kind
    from lmforge.train.precision import training_load_dtype
    from lmforge.train.runner import training_kwargs
    from lmforge.train.stages import STAGES
    from lmforge.train.stages.online import ONLINE

    path = resolve_model_path(cfg.model.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    template = run_template(cfg.model, tokenizer)
    prepared = build_datasets(cfg.data, tokenizer, template, stage=ONLINE, stage_name=cfg.finetuning.stage,
                              seed=cfg.training.seed)
    if side == "lmforge":  # as `lmforge train` builds it (its loading, LoRA and speed-ups included)
        model = load_model(cfg.model, dtype=training_load_dtype(cfg), cutoff_len=cfg.data.cutoff_len)
        model.config.use_cache = False
        model = apply_finetuning(model, cfg.finetuning, model_kind(cfg.model), adapters=cfg.model.adapter_name_or_path)
        trainer = STAGES.get("grpo").build_trainer(cfg, model, tokenizer, prepared, training_kwargs(cfg))
    else:  # trl as documented: the model, a LoRA config, text prompts, a reward function
        from trl import GRPOConfig, GRPOTrainer

        from lmforge.train.rewards import build_rewards

        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        model.generation_config.eos_token_id = stop_token_ids(template, tokenizer)
        reward = build_rewards(cfg.rl, template)[0].func
        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        args = GRPOConfig(**training_kwargs(cfg), num_generations=4, beta=0.0, log_completions=False,
                          max_completion_length=cfg.rl.max_completion_length)
        trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, processing_class=tokenizer,
                              train_dataset=prepared.train.select_columns(["prompt", "answer", "prompt_source"]),
                              peft_config=LoraConfig(r=8, lora_alpha=16, target_modules=targets))
    timed, cpu = TimedGenerate(trainer.model), CpuSeconds()
    trainer.add_callback(cpu)
    trainer.train()
    steps = [log["step_time"] for log in trainer.state.log_history if "step_time" in log][1:]
    return steps, cpu.steps[1:], timed.tokens / timed.seconds if timed.seconds else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="smollm2")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8, help="completions per step (2 prompts of 4)")
    parser.add_argument("--tokens", type=int, default=32, help="max_completion_length")
    parser.add_argument("--threads", type=int, help="torch's CPU threads (default: torch's, one per core)")
    parser.add_argument("--record", action="store_true", help="append the result to BENCHMARKS.md")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model, template = MODELS[args.model]
    results: dict[str, dict[str, list[float]]] = {side: {"step": [], "cpu": [], "tok": []}
                                                  for side in ("lmforge", "trl")}
    for run in range(args.runs):
        for side in ("lmforge", "trl") if run % 2 == 0 else ("trl", "lmforge"):
            with tempfile.TemporaryDirectory() as out:
                steps, cpu, tokens_per_s = run_side(side, config(model, template, out, args))
            results[side]["step"] += steps
            results[side]["cpu"] += cpu
            results[side]["tok"].append(tokens_per_s)
            print(f"run {run + 1} {side}: step times {[round(s, 2) for s in steps]} s "
                  f"(CPU {[round(s, 2) for s in cpu]} s), rollout {tokens_per_s:.1f} tok/s, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    import peft
    import torch
    import transformers
    import trl

    ours, theirs = (statistics.median(results[s]["step"]) for s in ("lmforge", "trl"))
    job = f"LoRA r8, {args.batch} completions x {args.tokens} tokens/step, {args.runs} runs x {args.steps - 1} steps"
    if args.threads:
        job += f", {args.threads} thread{'s' if args.threads > 1 else ''}"
    versions = (f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}, "
                f"peft {peft.__version__}")
    row = (f"| {today()} | {args.model} | {job} | {median_range(results['lmforge']['step'])} | "
           f"{median_range(results['trl']['step'])} | {theirs / ours:.2f}x | "
           f"{median_range(results['lmforge']['tok'])} | {median_range(results['trl']['tok'])} | {machine()} | "
           f"{versions} |")
    print(HEADER)
    print(row)
    print(json.dumps({"cpu_s_per_step": {side: [round(s, 3) for s in results[side]["cpu"]] for side in results},
                      "load_average": os.getloadavg()}))
    if args.record:
        append_benchmark_row(SECTION, HEADER, row)


if __name__ == "__main__":
    main()
