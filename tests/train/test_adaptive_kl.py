"""`ppo_target`: PPO's adaptive KL controller on trl's RLOO moves the trainer's `beta` after each step by
LLaMA-Factory's rule, from the KL and completion length the step logged; without it `beta` stays fixed."""

import json
import re

import pytest

from lmforge.config import build_config
from lmforge.errors import ConfigError
from lmforge.train.adaptive_kl import HORIZON
from lmforge.train.runner import run_training


def rloo_logs(tmp_path, **keys):
    rows = [{"instruction": f"Count to {n}.", "output": " ".join(map(str, range(1, n + 1)))} for n in range(8)]
    (tmp_path / "count.json").write_text(json.dumps(rows))
    run_training(build_config({
        "model_name_or_path": "builtin:tiny-llama", "template": "chatml", "stage": "rloo", "finetuning_type": "lora",
        "dataset": str(tmp_path / "count.json"), "reward_funcs": "length", "reward_length_target": 2,
        "num_generations": 4, "per_device_train_batch_size": 4, "max_completion_length": 6, "beta": 0.1,
        "learning_rate": 5e-2, "max_steps": 4, "logging_steps": 1, "save_strategy": "no", "report_to": "none",
        "seed": 3, "output_dir": str(tmp_path / "out"), **keys}))
    lines = (tmp_path / "out" / "trainer_log.jsonl").read_text().splitlines()
    return [log for log in map(json.loads, lines) if "kl" in log]


@pytest.mark.slow
@pytest.mark.parametrize("target", [1e-3, 1e6])
def test_beta_follows_the_adaptive_kl_rule(tmp_path, target):
    logs = rloo_logs(tmp_path, ppo_target=target)
    assert len(logs) == 4
    beta = 0.1
    for log in logs:  # 4 completions per step; the error is the sequence KL's, clipped to +-0.2
        error = min(max(log["kl"] * log["completions/mean_length"] / target - 1, -0.2), 0.2)
        beta *= 1 + error * 4 / HORIZON
        assert log["kl_coef"] == pytest.approx(beta, rel=1e-9)
    if target > 1:  # the KL stays far under the target: the coefficient shrinks every step
        assert [log["kl_coef"] for log in logs] == sorted((log["kl_coef"] for log in logs), reverse=True)
        assert logs[-1]["kl_coef"] == pytest.approx(0.1 * (1 - 0.2 * 4 / HORIZON) ** 4)
    else:  # past the target once the policy moved: the coefficient grows on those steps
        assert any(log["kl"] * log["completions/mean_length"] > target for log in logs)
        assert max(log["kl_coef"] for log in logs) > 0.1 * (1 - 0.2 * 4 / HORIZON)


def test_without_ppo_target_beta_is_not_adapted(tmp_path):
    logs = rloo_logs(tmp_path, max_steps=1)
    assert logs and all("kl_coef" not in log for log in logs)


@pytest.mark.parametrize(("keys", "expected"), [
    ({"stage": "grpo"}, "`stage: grpo` does not have: use `stage: ppo` or `rloo`"),
    ({"stage": "rloo", "beta": 0}, "`beta: 0` stays 0 (no reference is loaded): set a starting `beta`"),
])
def test_ppo_target_needs_a_kl_penalty_to_adapt(tmp_path, keys, expected):
    cfg = build_config({"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "reward_funcs": "length",
                        "reward_length_target": 2, "num_generations": 4, "per_device_train_batch_size": 4,
                        "ppo_target": 6.0, "dataset": "alpaca_en_demo", "output_dir": str(tmp_path / "out"), **keys})
    with pytest.raises(ConfigError, match=re.escape(expected)):
        run_training(cfg)
