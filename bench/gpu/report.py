"""The suite's results as JSON (every figure) and markdown (the tables docs/gpu.md and BENCHMARKS.md take)."""

import json
from pathlib import Path
from typing import Any

TRAINING_STEPS = {"train-lora-0.5b": "", "train-full-0.5b": "", "train-lora-1.5b": "", "train-full-1.5b": "",
                  "qlora": " (QLoRA, 4-bit base)", "liger": " (Liger kernels)", "zero3": " (ZeRO-3)"}
CONVENTION = ("MFU: non-padding tokens/s (steps 5-20) x model FLOPs per token / the GPU's datasheet dense bf16 "
              "peak (H100 SXM and H200: 989 TFLOP/s). FLOPs per token: 6N full, 4N + 6 x adapter parameters "
              "LoRA (N: every matmul weight, output head included), plus 12 x layers x heads x head_dim x "
              "context for attention, context being the token-weighted mean packed-sequence length; "
              "recomputation by gradient checkpointing (on: lmforge's GPU default) not counted. "
              "Peak memory: torch.cuda.max_memory_allocated.")


def _number(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _training_rows(steps: dict[str, dict[str, Any]]) -> list[str]:
    rows = []
    for name, label in TRAINING_STEPS.items():
        step = steps.get(name)
        if not step or step.get("status") != "ok":
            continue
        mfu = f"{100 * step['mfu']:.1f}%" if step.get("mfu") is not None else "-"
        memory = _number(step["peak_memory_mib"]) + ("" if step["peak_memory_kind"] == "GPU allocated" else " (RSS)")
        rows.append(f"| {step['model']} | {step['method']}{label} | {_number(step['tokens_per_s'])} | "
                    f"{memory} | {mfu} | {step['flops_per_token'] / 1e9:.2f} G | "
                    f"{_number(step['trainable_params'])} | {step['final_loss']:.3f} |")
    return rows


def markdown(summary: dict[str, Any]) -> str:
    steps = {step["name"]: step for step in summary["steps"]}
    env = steps.get("env", {})
    versions = env.get("versions", {})
    shown = ", ".join(f"{name} {version}" for name, version in versions.items() if version)
    lines = [f"# lmforge GPU suite{' (dry run, CPU)' if summary['dry_run'] else ''}", "",
             f"{summary['date']}, {env.get('device', 'no GPU')}, Python {env.get('python', '?')}; {shown}", ""]
    training = _training_rows(steps)
    if training:
        lines += ["## Training: SFT, packed at the cutoff, steady state", "",
                  "| model | method | tokens/s | peak GPU memory (MiB) | MFU | FLOPs/token | trainable params | loss |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |", *training, "", CONVENTION, ""]
    invariants = steps.get("invariants", {})
    if invariants.get("checks"):
        lines += [f"## Invariants ({invariants['device']}, fp32, {invariants['examples']} examples in "
                  f"{invariants['packed_rows']} packed rows)", "", "| against the unpacked batch | loss gap | "
                  "largest gradient gap |", "| --- | ---: | ---: |"]
        lines += [f"| {name} | {check['loss_gap']:.1e} | {check['gradient_gap']:.1e} |"
                  for name, check in invariants["checks"].items()]
        lines.append("")
    generation = steps.get("generation", {})
    if generation.get("status") == "ok":
        lines += ["## Generation", "", f"{generation['prompts']} concurrent prompts, {generation['max_new_tokens']} "
                  f"new tokens each, greedy, {generation['backend']} backend: {_number(generation['tokens_per_s'])} "
                  f"tokens/s ({generation['tokens']} tokens in {generation['seconds']} s; decoding calls of "
                  f"{generation['batch_sizes']} rows; vLLM usable: {generation['vllm_usable']})", ""]
    online = [steps[name] for name in ("grpo", "grpo-vllm") if steps.get(name, {}).get("status") == "ok"]
    if online:
        lines += ["## Online RL: GRPO, LoRA, 8 completions a step", "", "| model | rollouts | steps | s/step "
                  "(median after the first) | rollout tokens/s | completion length | reward first -> last | "
                  "peak memory (MiB) |", "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |"]
        lines += [f"| {step['model']} | {step['rollouts']} | {step['steps']} | {step['step_s']:.2f} | "
                  f"{_number(step['rollout_tokens_per_s'], 1)} | {_number(step['completion_mean_length'], 1)} | "
                  f"{step['reward_first']:.3f} -> {step['reward_last']:.3f} | {_number(step['peak_memory_mib'])}"
                  f"{'' if step['peak_memory_kind'] == 'GPU allocated' else ' (RSS)'} |" for step in online]
        lines.append("")
    lines += ["## Steps", "", "| step | status | seconds | box | note |", "| --- | --- | ---: | ---: | --- |"]
    for step in summary["steps"]:
        note = step.get("why") or step.get("what", "")
        if step["name"] == "pytest-gpu" and "tests" in step:
            note = f"{step['tests']} tests, {step['failures'] + step['errors']} failed, {step['skipped']} skipped" + (
                f"; {step['why']}" if step.get("why") else "")
        lines.append(f"| {step['name']} | {step['status']} | {_number(step.get('seconds'), 1)} | {step['box_s']} | "
                     f"{note} |")
    lines += ["", f"Wall time {summary['wall_s']:.0f} s of {summary['total_s']} s."]
    return "\n".join(lines) + "\n"


def write_results(out: Path, summary: dict[str, Any]) -> None:
    """gpu_suite.json and gpu_suite.md in `out` (rewritten after every step: a killed run keeps its results)."""
    (out / "gpu_suite.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "gpu_suite.md").write_text(markdown(summary))
