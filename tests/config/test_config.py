import json

import pytest
import yaml

from lmforge.config import build_config, load_config
from lmforge.config.llamafactory import PENDING_KEYS
from lmforge.config.loader import KEY_TO_GROUP
from lmforge.errors import ConfigError
from tests.refdata import refdata


def test_flat_keys_land_in_typed_groups():
    cfg = build_config({"model_name_or_path": "m", "dataset": "a, b", "lora_target": "q_proj,v_proj",
                        "learning_rate": "1e-4", "per_device_train_batch_size": 2, "warmup_ratio": 0.1})
    assert cfg.model.model_name_or_path == "m"
    assert cfg.data.dataset == ["a", "b"]
    assert cfg.finetuning.lora_target == ["q_proj", "v_proj"]
    assert cfg.training.learning_rate == pytest.approx(1e-4)
    kwargs = cfg.training.trainer_kwargs()
    assert kwargs["per_device_train_batch_size"] == 2
    assert kwargs["warmup_steps"] == pytest.approx(0.1)  # transformers 5 reads < 1 as a ratio
    assert "warmup_ratio" not in kwargs and kwargs["report_to"] == "none"


def test_unknown_key_suggests_closest_names():
    with pytest.raises(ConfigError, match=r"unknown key `lora_rnk`; did you mean `lora_rank`"):
        build_config({"lora_rnk": 8}, source="run.yaml")


def test_pending_llamafactory_key_names_the_feature():
    with pytest.raises(ConfigError, match=r"`use_hyper_parallel` belongs to the HyperParallel training backend"):
        build_config({"use_hyper_parallel": True})


@pytest.mark.parametrize(("raw", "pattern"), [
    ({"learning_rate": "fast"}, r"key `learning_rate` = 'fast': Input should be a valid number"),
    ({"per_device_train_batch_size": 1.5}, r"key `per_device_train_batch_size` = 1.5: .*integer"),
    ({"lr_scheduler_type": "cosin"}, r"key `lr_scheduler_type` = 'cosin': Input should be 'linear', 'cosine'"),
    ({"cutoff_len": 0}, r"key `cutoff_len` = 0: Input should be greater than 0"),
    ({"finetuning_type": "qlora"}, r"key `finetuning_type` = 'qlora'"),
])
def test_wrong_type_names_key_value_and_expectation(raw, pattern):
    with pytest.raises(ConfigError, match=pattern):
        build_config(raw, source="run.yaml")


@pytest.mark.parametrize(("raw", "pattern"), [
    ({"bf16": True, "fp16": True}, r"`bf16` and `fp16` cannot both be true"),
    ({"finetuning_type": "full", "adapter_name_or_path": "a"}, r"only valid with `finetuning_type: lora`"),
    ({"val_size": 0.1, "eval_dataset": "x"}, r"`val_size` and `eval_dataset` cannot both be set"),
    ({"val_size": 2.5}, r"share below 1 or a whole row count"),
    ({"finetuning_type": "full", "use_dora": True}, r"`use_dora` only apply to `finetuning_type: lora` \(got `full`\)"),
    ({"finetuning_type": "lora", "freeze_trainable_layers": 1},
     r"`freeze_trainable_layers` only apply to `finetuning_type: freeze`"),
    ({"finetuning_type": "full", "quantization_bit": 4},
     r"`quantization_bit: 4` \(QLoRA\) trains LoRA or OFT adapters"),
    ({"pissa_init": True, "pissa_convert": False}, r"only works on PiSSA's residual base model"),
    ({"flash_attn": "fa2", "attn_implementation": "eager"},
     r"`flash_attn: fa2` and `attn_implementation: eager` disagree"),
])
def test_incompatible_combinations_name_the_rule(raw, pattern):
    with pytest.raises(ConfigError, match=pattern):
        build_config(raw)


def test_overrides_apply_on_top_of_yaml(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model_name_or_path: m\nlearning_rate: 1.0e-4\nnum_train_epochs: 3\n")
    cfg = load_config(path, ["learning_rate=5e-5", "num_train_epochs=1", "adapter_name_or_path=null"])
    assert cfg.training.learning_rate == pytest.approx(5e-5)
    assert cfg.training.num_train_epochs == 1
    with pytest.raises(ConfigError, match="must look like key=value"):
        load_config(path, ["learning_rate"])


def test_bad_files_fail_clearly(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(bad)
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(bad)


def test_training_fields_snapshot_matches_installed_transformers():
    from lmforge.train.fields_snapshot import SNAPSHOT_PATH, current_training_fields

    assert json.loads(SNAPSHOT_PATH.read_text()) == current_training_fields(), (
        "transformers changed TrainingArguments: run `python -m lmforge.train.fields_snapshot`")


def test_every_llamafactory_example_key_is_known_or_named():
    """LLaMA-Factory's own example configs: every key is ours or a named not-yet-supported feature."""
    examples = sorted(refdata("llamafactory_examples_v0.9.3").glob("train_*/*.yaml"))
    examples += sorted(refdata("llamafactory_examples_v0.9.3").glob("inference/*.yaml"))
    examples += sorted(refdata("llamafactory_examples_v0.9.3").glob("merge_lora/*.yaml"))
    assert len(examples) > 15
    for example in examples:
        keys = set(yaml.safe_load(example.read_text()))
        unknown = [k for k in keys if k not in KEY_TO_GROUP and k not in PENDING_KEYS]
        assert not unknown, f"{example.name}: {unknown}"


def test_llamafactory_lora_sft_example_validates_as_is():
    raw = yaml.safe_load(refdata("llamafactory_examples_v0.9.3", "train_lora", "llama3_lora_sft.yaml").read_text())
    cfg = build_config(raw)
    assert cfg.finetuning.finetuning_type == "lora" and cfg.data.dataset == ["identity", "alpaca_en_demo"]
    assert cfg.training.trainer_kwargs()["warmup_steps"] == pytest.approx(0.1)


@pytest.mark.parametrize("key, value, pattern", [
    ("learning_rate", 0, "greater than 0"),
    ("learning_rate", -1e-4, "greater than 0"),
    ("per_device_train_batch_size", 0, "greater than or equal to 1"),
    ("gradient_accumulation_steps", 0, "greater than or equal to 1"),
    ("num_train_epochs", 0, "greater than 0"),
    ("max_steps", -2, "greater than or equal to -1"),
    ("adam_beta2", 1.0, "less than 1"),
    ("logging_steps", 0, "greater than 0"),
    ("warmup_ratio", 1.5, "less than 1"),
])
def test_numeric_keys_are_range_checked_before_anything_loads(key, value, pattern):
    with pytest.raises(ConfigError, match=rf"key `{key}` = {value!r}: Input should be {pattern}"):
        build_config({key: value})


def test_yaml_no_reads_as_the_no_choice(tmp_path):
    """LLaMA-Factory users write `save_strategy: no`, which YAML reads as false."""
    path = tmp_path / "run.yaml"
    path.write_text("save_strategy: no\neval_strategy: no\nlogging_strategy: steps\n")
    cfg = load_config(path)
    assert (cfg.training.save_strategy, cfg.training.eval_strategy) == ("no", "no")
    with pytest.raises(ConfigError, match="`save_strategy` = True"):
        build_config({"save_strategy": True})


def test_override_problems_name_the_command_line_not_the_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model_name_or_path: m\nlearning_rate: 1.0e-4\n")
    with pytest.raises(ConfigError, match=r"command-line override: unknown key `learnig_rate`; did you mean"):
        load_config(path, ["learnig_rate=5e-5"])
    with pytest.raises(ConfigError, match=r"command-line override: key `learning_rate` = 0"):
        load_config(path, ["learning_rate=0"])
    with pytest.raises(ConfigError, match=rf"{path}: unknown key `num_epochs`"):
        path.write_text("num_epochs: 1\n")
        load_config(path, ["learning_rate=1e-5"])


@pytest.mark.parametrize(("path", "says"), [
    (("llamafactory_examples_v0.9.3", "accelerate", "fsdp_config.yaml"), "accelerate launch --config_file"),
    (("llamafactory_data", "dataset_info.json"), "dataset_info.json (dataset names and their files)"),
])
def test_files_that_sit_beside_training_configs_are_named_for_what_they_are(path, says):
    """LLaMA-Factory's accelerate configs and dataset_info.json passed where a training config goes: the error says
    what the file is and where it belongs, not "unknown key" for each of its keys."""
    file = refdata(*path)
    with pytest.raises(ConfigError, match="not a training config") as err:
        load_config(file)
    assert says in str(err.value) and "unknown key" not in str(err.value)


def test_a_deepspeed_config_passed_as_the_training_config_says_where_it_goes():
    with pytest.raises(ConfigError, match=r"a DeepSpeed config, not a training config: .*`deepspeed: examples/"):
        load_config("examples/deepspeed/ds_z3_config.json")


def test_a_special_tokens_file_passed_as_the_training_config_says_where_it_goes(tmp_path):
    """LLaMA-Factory's examples/extras/multi_tokens/tokens_cfg.yaml shape: token -> description."""
    path = tmp_path / "tokens_cfg.yaml"
    path.write_text('"<|START_OF_SVG|>": "Marks the beginning of an SVG document"\n"<|END_OF_SVG|>": "Its end"\n')
    with pytest.raises(ConfigError, match=rf"new special tokens .*`new_special_tokens_config: {path}`"):
        load_config(path)


@pytest.mark.parametrize("deepspeed", ["examples/deepspeed/ds_z3_config.json", {"zero_optimization": {"stage": 3}}])
def test_zero3_rules_read_the_stage_from_a_file_or_a_mapping(deepspeed):
    with pytest.raises(ConfigError, match="`pure_bf16` with DeepSpeed ZeRO-3"):
        build_config({"pure_bf16": True, "deepspeed": deepspeed})
    with pytest.raises(ConfigError, match="`do_predict` after training with FSDP or DeepSpeed ZeRO-3"):
        build_config({"do_train": True, "do_predict": True, "eval_dataset": "identity", "deepspeed": deepspeed})
    build_config({"pure_bf16": True, "deepspeed": "examples/deepspeed/ds_z2_config.json"})  # stage 2: no rule
