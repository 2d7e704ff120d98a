"""A DeepSpeed config's explicit values that differ from the training config are refused before the model loads,
the same differences transformers finds when it builds the DeepSpeed engine (after loading, in every process)."""

import json
import types

import pytest
from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

from lmforge.config import build_config
from lmforge.errors import ConfigError
from lmforge.train.deepspeed_match import MATCHED, check_deepspeed_matches, deepspeed_mismatches
from lmforge.train.runner import training_kwargs
from tests.conftest import ROOT, run_cli

WRITTEN_FOR_ANOTHER_RUN = {
    "train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 2, "train_batch_size": 8,
    "gradient_clipping": 0.5, "fp16": {"enabled": True}, "bf16": {"enabled": "auto"},
    "optimizer": {"type": "AdamW", "params": {"lr": 1e-4, "betas": [0.9, 0.95], "eps": "auto", "weight_decay": 0.1}},
    "scheduler": {"type": "WarmupLR", "params": {"warmup_max_lr": 1e-4}}, "zero_optimization": {"stage": 2}}


def _transformers_mismatches(settings: dict, kwargs: dict, world_size: int) -> list[str]:
    """transformers' own comparison, on the TrainingArguments these kwargs make."""
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir="unused", **{k: v for k, v in kwargs.items() if k != "deepspeed"})
    as_run = types.SimpleNamespace(**{**vars(args), "world_size": world_size})
    config = HfTrainerDeepSpeedConfig(json.loads(json.dumps(settings)))
    config.trainer_config_process(as_run)
    return config.mismatches


@pytest.mark.parametrize("world_size", [1, 2])
def test_the_differences_are_the_ones_transformers_finds(world_size):
    cfg = build_config({"finetuning_type": "full", "deepspeed": WRITTEN_FOR_ANOTHER_RUN,
                        "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2, "learning_rate": 1e-4})
    kwargs = training_kwargs(cfg)
    ours = deepspeed_mismatches(WRITTEN_FOR_ANOTHER_RUN, kwargs, world_size)
    theirs = _transformers_mismatches(WRITTEN_FOR_ANOTHER_RUN, kwargs, world_size)
    assert [line.split("=")[0].removeprefix("- ds ") for line in theirs] == [
        line.split(":")[0].strip("`") for line in ours]
    assert {line.split(":")[0].strip("`") for line in ours} == (
        {"gradient_clipping", "optimizer.params.betas", "optimizer.params.weight_decay", "fp16.enabled"}
        | ({"train_batch_size"} if world_size == 2 else set()))
    assert set(MATCHED) >= {line.split(":")[0].strip("`") for line in ours}


def test_auto_values_and_matching_ones_pass_and_a_difference_names_the_fix():
    cfg = build_config({"finetuning_type": "full", "deepspeed": str(ROOT / "examples" / "deepspeed" /
                                                                     "ds_z3_config.json")})
    check_deepspeed_matches(cfg.training.deepspeed_settings(), training_kwargs(cfg), 2)  # "auto" throughout
    with pytest.raises(ConfigError, match=r"the DeepSpeed config disagrees with the training config: "
                                          r"`train_micro_batch_size_per_gpu: 4` where the run has "
                                          r"`per_device_train_batch_size`: 8\. Set those values to \"auto\""):
        check_deepspeed_matches({"train_micro_batch_size_per_gpu": 4}, training_kwargs(build_config({})), 1)
    check_deepspeed_matches({"train_micro_batch_size_per_gpu": 4},  # the batch finder changes it as it goes
                            training_kwargs(build_config({"auto_find_batch_size": True})), 1)


@pytest.mark.slow
def test_lmforge_train_refuses_a_deepspeed_config_written_for_another_run_before_loading(tmp_path):
    (tmp_path / "ds.json").write_text(json.dumps({"train_micro_batch_size_per_gpu": 4, "gradient_clipping": 0.5,
                                                  "zero_optimization": {"stage": 2}}))
    config = tmp_path / "run.yaml"
    config.write_text(f"model_name_or_path: builtin:tiny-llama\ntemplate: chatml\nstage: sft\nfinetuning_type: full\n"
                      f"dataset: identity\ndataset_dir: {ROOT / 'examples' / 'data'}\ndeepspeed: {tmp_path / 'ds.json'}"
                      f"\nper_device_train_batch_size: 2\noutput_dir: {tmp_path / 'out'}\n")
    result = run_cli("train", str(config))
    said = " ".join(result.stderr.split())
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert ("`train_micro_batch_size_per_gpu: 4` where the run has `per_device_train_batch_size`: 2; "
            "`gradient_clipping: 0.5` where the run has `max_grad_norm`: 1.0") in said
    assert "model LlamaForCausalLM" not in result.stdout  # refused before the model loaded
