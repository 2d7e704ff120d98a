"""One suite step in its own process: `python -m bench.gpu.step NAME --work DIR --result FILE [--dry-run]`.

The suite (bench/gpu/suite.py) starts each step this way, in a new process group it can kill whole when
the step outlives its time box. The step's result (a JSON object with at least `status`) goes to FILE.
"""

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.gpu.check_steps import (
    step_env,
    step_generation,
    step_hub_kernels,
    step_invariants,
    step_models,
    step_pytest,
)
from bench.gpu.plan import STEP_NAMES, Context
from bench.gpu.rl_steps import step_grpo, step_grpo_vllm
from bench.gpu.train_steps import run_training, step_liger, step_qlora, step_zero3

STEPS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "env": step_env,
    "models": step_models,
    "train-lora-0.5b": lambda ctx: run_training(ctx, "train-lora-0.5b"),
    "train-full-0.5b": lambda ctx: run_training(ctx, "train-full-0.5b"),
    "train-lora-1.5b": lambda ctx: run_training(ctx, "train-lora-1.5b"),
    "train-full-1.5b": lambda ctx: run_training(ctx, "train-full-1.5b"),
    "invariants": step_invariants,
    "generation": step_generation,
    "pytest-gpu": step_pytest,
    "grpo": step_grpo,
    "qlora": step_qlora,
    "liger": step_liger,
    "zero3": step_zero3,
    "hub-kernels": step_hub_kernels,
    "grpo-vllm": step_grpo_vllm,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=STEP_NAMES)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    result = STEPS[args.name](Context(args.work, args.dry_run))
    args.result.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
