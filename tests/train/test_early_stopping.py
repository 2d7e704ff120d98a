"""`early_stopping_steps`: training stops once the watched metric has not improved for that many evaluations
(and `include_effective_tokens_per_second` reported on the same runs)."""

import pytest
from rich.console import Console

from lmforge.config import build_config
from lmforge.errors import ConfigError
from lmforge.train.runner import run_training
from tests.conftest import ROOT

BASE = {"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "dataset": "identity",
        "dataset_dir": str(ROOT / "examples" / "data"), "max_samples": 16, "cutoff_len": 64, "max_steps": 8,
        "per_device_train_batch_size": 4, "logging_steps": 1, "report_to": "none", "overwrite_output_dir": True,
        "save_strategy": "no", "val_size": 4, "eval_strategy": "steps", "eval_steps": 1}


@pytest.mark.slow
def test_training_stops_when_eval_loss_stops_improving(tmp_path):
    """A learning rate below float32's resolution leaves the weights (and eval loss) as they are: the first
    evaluation sets the best loss, the next two do not beat it, and patience 2 stops the run at step 3 of 8."""
    stopped = run_training(build_config({**BASE, "output_dir": str(tmp_path / "stopped"), "learning_rate": 1e-30,
                                         "early_stopping_steps": 2}), Console(quiet=True))
    assert stopped["steps"] == 3
    improving = run_training(build_config({**BASE, "output_dir": str(tmp_path / "improving"), "learning_rate": 1e-3,
                                           "early_stopping_steps": 2, "max_steps": 4,
                                           "include_effective_tokens_per_second": True}), Console(quiet=True))
    assert improving["steps"] == 4
    assert improving["effective_tokens_per_sec"] == improving["non_pad_tokens_per_s"] > 0
    assert "effective_tokens_per_sec" not in stopped


def test_early_stopping_needs_evaluations():
    with pytest.raises(ConfigError, match="set `val_size` or `eval_dataset`"):
        build_config({"early_stopping_steps": 2, "eval_strategy": "steps"})
    with pytest.raises(ConfigError, match="set `eval_strategy: steps`"):
        build_config({"early_stopping_steps": 2, "val_size": 0.1})
    cfg = build_config({"early_stopping_steps": 2, "val_size": 0.1, "eval_strategy": "epoch"})
    kwargs = cfg.training.trainer_kwargs()
    assert kwargs["metric_for_best_model"] == "loss" and "early_stopping_steps" not in kwargs
