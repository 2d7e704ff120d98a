"""The GPU suite's CPU dry run (bench/gpu/run.sh --dry-run), so the script cannot rot between GPU runs."""

import json
import os
import subprocess
import sys

import pytest
from bench.gpu.plan import PLAN, check_time_boxes
from bench.gpu.wheels import check_pins, pyproject_requirements, read_image_packages, read_wheel_list

from tests.conftest import ROOT


def test_the_wheel_list_pins_what_lmforge_requires_and_fits_the_transfer():
    wheels = read_wheel_list()
    assert check_pins(wheels, read_image_packages()) == []
    carried = {wheel.name for wheel in wheels}
    image = read_image_packages()
    # every requirement `lmforge train` imports is carried or on the image
    for name in ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "pydantic", "pyyaml", "jinja2",
                 "typer", "rich", "sacrebleu", "rouge-score", "safetensors", "tokenizers", "matplotlib", "psutil"):
        assert name in carried or name in image, name
        assert name in pyproject_requirements()


def test_the_time_boxes_fit_the_lease():
    assert check_time_boxes() == []
    assert {step.name for step in PLAN if step.dry_run} >= {"env", "models", "train-lora-0.5b"}


def test_the_grpo_steps_configs_validate_and_only_the_vllm_one_asks_for_colocated_vllm(tmp_path):
    from bench.gpu.plan import Context
    from bench.gpu.rl_steps import grpo_config

    from lmforge.config import build_config

    gpu = Context(tmp_path, dry_run=False)
    cfg = build_config(grpo_config(gpu, tmp_path / "out", use_vllm=True))
    assert cfg.finetuning.stage == "grpo" and cfg.rl.use_vllm and cfg.generation.vllm_gpu_util == 0.3
    assert cfg.training.per_device_train_batch_size % cfg.rl.num_generations == 0
    cfg = build_config(grpo_config(gpu, tmp_path / "out"))
    assert cfg.finetuning.stage == "grpo" and not cfg.rl.use_vllm and cfg.rl.max_completion_length == 64


@pytest.mark.slow
def test_dry_run_checks_the_plan_and_runs_the_small_steps_on_the_cpu(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    env.pop("LMFORGE_GPU_SUITE_START", None)
    result = subprocess.run(["bash", str(ROOT / "bench" / "gpu" / "run.sh"), "--dry-run"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((tmp_path / "gpu_suite.json").read_text())
    assert summary["dry_run"] and summary["problems"] == []
    assert {"gguf", "fastapi", "vllm"} <= set(summary["blocked_imports"])  # ran as on the GPU image
    steps = {step["name"]: step for step in summary["steps"]}
    assert [step["name"] for step in summary["steps"]] == [step.name for step in PLAN]
    for step in PLAN:
        expected = "ok" if step.dry_run else "skipped"
        assert steps[step.name]["status"] == expected, steps[step.name]
    assert steps["models"]["parameters"]["qwen2.5-1.5b"] == 1_543_714_304
    assert len(steps["models"]["validated_configs"]) == 10  # every GPU config passed lmforge's checks
    train = steps["train-lora-0.5b"]
    assert train["tokens_per_s"] > 0 and train["flops_per_token"] > 0 and train["mfu"] is None  # no GPU peak
    assert steps["invariants"]["packed_rows"] < steps["invariants"]["examples"]
    assert steps["generation"]["tokens"] == 4 * 8
    grpo = steps["grpo"]  # the GPU run's online-RL row, its rollouts through generate
    assert grpo["rollouts"] == "generate" and grpo["steps"] == 2 and grpo["step_s"] > 0
    markdown = (tmp_path / "gpu_suite.md").read_text()
    assert "| tiny | lora |" in markdown and "| zero3 | skipped |" in markdown and "| tiny | generate | 2 |" in markdown
    assert (tmp_path / "gpu_suite.log").stat().st_size > 0
