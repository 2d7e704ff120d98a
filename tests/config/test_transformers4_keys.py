"""Configs written for transformers 4's Trainer: its renamed keys are read under their new names, its removed keys
are dropped where they asked for nothing and refused with what to write instead where they did."""

import pytest
from transformers import TrainingArguments

from lmforge.config import build_config
from lmforge.config.training import TrainingGroup
from lmforge.config.transformers4 import REMOVED, RENAMED
from lmforge.errors import ConfigError
from lmforge.train.runner import training_kwargs

OLD_VALUES = {"evaluation_strategy": "epoch", "per_gpu_train_batch_size": 2, "per_gpu_eval_batch_size": 2,
              "no_cuda": True, "include_inputs_for_metrics": True, "push_to_hub_model_id": "me/run",
              "push_to_hub_token": "hf_x", "torchdynamo": "inductor", "adafactor": True, "group_by_length": True}


def test_the_tables_name_keys_transformers_5_lacks_and_renames_to_keys_it_has():
    known = set(TrainingGroup.model_fields)
    assert not (set(RENAMED) | set(REMOVED)) & known  # a key transformers has again must not be rewritten
    assert {target for target, _ in RENAMED.values()} <= known
    assert set(OLD_VALUES) == set(RENAMED)


def test_renamed_keys_reach_transformers_under_their_new_names(tmp_path):
    raw = {**OLD_VALUES, "eval_dataset": "identity", "output_dir": str(tmp_path)}
    kwargs = training_kwargs(build_config(raw))
    assert {key: kwargs[key] for key in ("eval_strategy", "per_device_train_batch_size", "use_cpu",
                                         "include_for_metrics", "hub_model_id", "torch_compile_backend", "optim",
                                         "train_sampling_strategy")} == {
        "eval_strategy": "epoch", "per_device_train_batch_size": 2, "use_cpu": True, "include_for_metrics": ["inputs"],
        "hub_model_id": "me/run", "torch_compile_backend": "inductor", "optim": "adafactor",
        "train_sampling_strategy": "group_by_length"}
    TrainingArguments(**kwargs)  # what transformers 5 takes
    assert "optim" not in build_config({"adafactor": False}).training.trainer_kwargs()  # false asks for nothing


@pytest.mark.parametrize(("raw", "said"), [
    ({"logging_dir": "tb"}, r"`logging_dir: tb` is a transformers 4 key that transformers 5 removed: transformers 5 "
                            r"writes TensorBoard files to output_dir/runs/, or to the folder the "
                            r"TENSORBOARD_LOGGING_DIR environment variable names"),
    ({"save_safetensors": False}, r"`save_safetensors: false` .* transformers 5 always saves safetensors"),
    ({"fp16_backend": "apex"}, r"transformers 5 has no apex backend"),
    ({"push_to_hub_organization": "org"}, r"write the organisation into `hub_model_id: ORG/NAME`"),
    ({"evaluation_strategy": "steps", "eval_strategy": "no"},
     r"`evaluation_strategy` \(transformers 4's name\) and `eval_strategy` set the same thing: keep `eval_strategy`"),
])
def test_what_transformers_5_cannot_do_is_refused_with_what_to_write(raw, said):
    with pytest.raises(ConfigError, match=said):
        build_config(raw)


def test_removed_keys_that_asked_for_nothing_are_dropped():
    cfg = build_config({"save_safetensors": True, "use_mps_device": True, "fp16_opt_level": "O1",
                        "half_precision_backend": "auto", "past_index": -1, "include_tokens_per_second": True,
                        "tpu_num_cores": 8, "ray_scope": "last", "use_legacy_prediction_loop": False})
    kwargs = cfg.training.trainer_kwargs()
    assert not set(REMOVED) & set(kwargs)
