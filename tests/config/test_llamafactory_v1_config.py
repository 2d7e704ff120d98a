"""LLaMA-Factory v1's configs (plugin mappings, v1 names, its dataset files) read as the flat keys they stand
for, with v1's defaults where they differ from v0.9's; what lmforge does not run is refused with the reason."""

import json

import pytest

from lmforge.config import build_config, load_config
from lmforge.config.llamafactory_v1 import is_v1_config, translate_v1
from lmforge.errors import ConfigError
from tests.conftest import run_cli

# the shape of LLaMA-Factory's examples/v1/train_lora/train_lora_sft.yaml
LORA_SFT = {"model": "builtin:tiny-llama", "model_class": "llm",
            "peft_config": {"name": "lora", "r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": "all"},
            "kernel_config": {"name": "auto"}, "dist_config": {"name": "fsdp2", "dcp_path": None},
            "train_dataset": "data/v1_sft_demo.yaml", "output_dir": "./outputs/test_lora", "micro_batch_size": 1,
            "cutoff_len": 2048, "learning_rate": 1.0e-4, "max_steps": 10, "sample_backend": "hf",
            "max_new_tokens": 128}


def test_the_lora_example_reads_as_flat_keys_with_v1s_defaults(llamafactory_folder):
    flat, notice = translate_v1(LORA_SFT)
    assert flat == {"model_name_or_path": "builtin:tiny-llama", "dataset": "data/v1_sft_demo.yaml",
                    "output_dir": "./outputs/test_lora", "per_device_train_batch_size": 1, "cutoff_len": 2048,
                    "learning_rate": 1.0e-4, "max_steps": 10, "max_new_tokens": 128, "finetuning_type": "lora",
                    "lora_rank": 16, "lora_alpha": 32, "lora_dropout": 0.05, "lora_target": "all",
                    "fsdp": "full_shard auto_wrap", "infer_backend": "huggingface", "template": "auto",
                    "lr_scheduler_type": "constant", "weight_decay": 0.01, "logging_steps": 1, "stage": "sft"}
    assert notice.startswith("read as a LLaMA-Factory v1 config: stage sft, lora, template auto, lr scheduler "
                             "constant") and "kernels auto not used" in notice
    cfg = build_config(LORA_SFT)
    assert cfg.notices == (notice,) and cfg.finetuning.lora_rank == 16 and cfg.data.dataset == ["data/v1_sft_demo.yaml"]
    # LoRA's defaults are v1's (dropout 0.05), not v0.9's (0)
    assert translate_v1({**LORA_SFT, "peft_config": {"name": "lora"}})[0]["lora_dropout"] == 0.05


def test_methods_engines_and_optimizers(llamafactory_folder):
    freeze = translate_v1({"model": "m", "peft_config": {"name": "freeze", "freeze_trainable_layers": 2,
                                                         "freeze_trainable_modules": ["mlp", "self_attn"],
                                                         "freeze_extra_modules": None}})[0]
    assert (freeze["finetuning_type"], freeze["freeze_trainable_modules"]) == ("freeze", "mlp,self_attn")
    assert "freeze_extra_modules" not in freeze
    assert translate_v1({"model": "m"})[0]["finetuning_type"] == "full"  # no peft_config: full fine-tuning
    deepspeed = translate_v1({"model": "m", "dist_config": {"name": "deepspeed", "config_file": "ds_z3.json"}})[0]
    assert deepspeed["deepspeed"] == "ds_z3.json" and "fsdp" not in deepspeed
    quantized = translate_v1({"model": "m", "peft_config": {"name": "lora"},
                              "quant_config": {"name": "bnb", "quantization_bit": 4}})[0]
    assert (quantized["quantization_method"], quantized["quantization_bit"]) == ("bnb", 4)
    assert "quantization_bit" not in translate_v1({"model": "m", "quant_config": {"name": "auto"}})[0]
    muon = translate_v1({"model": "m", "optim_config": {"name": "muon", "wd": 0.1, "momentum": 0.95}})[0]
    assert muon["use_muon"] and muon["weight_decay"] == 0.1
    batched, notice = translate_v1({"model": "m", "micro_batch_size": 2, "global_batch_size": 16,
                                    "batching_strategy": "dynamic_padding_free", "flash_attn": "flash_attention_2",
                                    "enable_activation_checkpointing": False, "resume_from_checkpoint": "auto"})
    assert (batched["global_batch_size"], batched["packing"], batched["flash_attn"]) == (16, True, "fa2")
    assert batched["activation_checkpointing"] is False and "resume_from_checkpoint" not in batched
    assert "gradient_accumulation_steps" not in batched  # made from it per run, by the number of processes
    assert "global_batch_size 16 as accumulation steps of 2-example micro-batches: 8 in one process" in notice
    unset = translate_v1({"model": "m"})[0]  # v1's defaults where the config says nothing
    assert (unset["per_device_train_batch_size"], unset["learning_rate"], unset["logging_steps"]) == (1, 1e-4, 1)
    assert "init_config init_on_rank0 not needed" in translate_v1({"model": "m",
                                                                  "init_config": {"name": "init_on_rank0"}})[1]
    liger = translate_v1({"model": "m", "kernel_config": {"name": "liger_kernel"}, "lr_scheduler_type": "cosine"})[0]
    assert liger["enable_liger_kernel"] and liger["lr_scheduler_type"] == "cosine"  # lmforge's keys beside v1's stay


def test_the_merge_example_names_the_adapter_and_the_export():
    flat, notice = translate_v1({"model": "m", "peft_config": {"name": "lora", "adapter_name_or_path": "./out",
                                                               "export_dir": "./merged", "export_size": 5,
                                                               "infer_dtype": "auto"}})
    assert (flat["adapter_name_or_path"], flat["export_dir"], flat["export_size"]) == ("./out", "./merged", 5)
    assert notice.startswith("read as a LLaMA-Factory v1 config: lora,")  # no stage: nothing is trained


def test_the_stage_comes_from_the_data_when_not_given(llamafactory_folder):
    assert translate_v1({"model": "m", "train_dataset": "data/v1_dpo_demo.yaml"})[0]["stage"] == "dpo"
    assert translate_v1({"model": "m", "train_dataset": "data/v1_dpo_demo.jsonl"})[0]["stage"] == "dpo"
    assert translate_v1({"model": "m", "train_dataset": "data/v1_sft_demo.jsonl"})[0]["stage"] == "sft"
    assert translate_v1({"model": "m", "model_class": "cls"})[0]["stage"] == "rm"
    assert translate_v1({"model": "m", "train_dataset": "data/v1_sft_demo.yaml", "stage": "pt"})[0]["stage"] == "pt"
    hub = build_config({"model": "m", "train_dataset": "llamafactory/v1-sft-demo"})  # no local path: the hub's
    assert hub.data.dataset_dir == "ONLINE" and hub.data.dataset == ["llamafactory/v1-sft-demo"]


@pytest.mark.parametrize(("changes", "pattern"), [
    ({"cp_size": 2}, r"`cp_size: 2`: lmforge runs data parallelism"),
    ({"model_class": "other"}, r"`model_class: other` loads a model without a head"),
    ({"custom_chat_template": "{{ messages }}"}, r"save the jinja as the tokenizer's `chat_template`"),
    ({"lr_scheduler_config": {"name": "cosine"}}, r"registers no scheduler; set `lr_scheduler_type`"),
    ({"peft_config": {"name": "ia3"}}, r"`peft_config: \{name: ia3\}`: lmforge reads freeze, lora"),
    ({"peft_config": {"name": "lora", "rank": 8}}, r"`peft_config` \(lora\) has unknown key\(s\) `rank`"),
    ({"kernel_config": {"name": "auto, flash-linear-attention"}}, r"flash-linear-attention.* is not applied"),
    ({"micro_batch_size": 3, "global_batch_size": 16}, r"not a multiple of `micro_batch_size: 3`"),
    ({"dist_config": {"name": "fsdpturbo"}}, r"`dist_config: \{name: fsdpturbo\}`: lmforge reads deepspeed, fsdp2"),
    ({"save_epochs": 0.5}, r"`save_epochs: 0.5`: lmforge saves every epoch"),
    ({"dist_config": {"name": "fsdp2", "dcp_path": "/ckpt"}}, r"`dist_config.dcp_path: /ckpt`: lmforge loads the "
                                                               r"weights from `model`"),
])
def test_what_lmforge_does_not_run_is_refused_with_the_reason(changes, pattern):
    with pytest.raises(ConfigError, match=pattern):
        translate_v1({**LORA_SFT, **changes})


def test_lmforges_own_keys_beside_v1_ones_win_over_v1s_defaults_and_must_agree_with_its_keys():
    mixed = translate_v1({**LORA_SFT, "finetuning_type": "lora", "lora_rank": 16, "lr_scheduler_type": "cosine",
                          "template": "qwen3", "warmup_ratio": 0.1})[0]
    assert (mixed["lr_scheduler_type"], mixed["template"], mixed["warmup_ratio"]) == ("cosine", "qwen3", 0.1)
    assert translate_v1({"model": "m", "peft_config": {"name": "lora"}, "lora_rank": 32})[0]["lora_rank"] == 32
    assert translate_v1({"model": "m", "finetuning_type": "lora"})[0]["finetuning_type"] == "lora"
    with pytest.raises(ConfigError, match=r"`lora_rank: 8` disagrees with the LLaMA-Factory v1 key that sets it "
                                          r"\(lora_rank: 16\): keep one"):
        translate_v1({**LORA_SFT, "lora_rank": 8})
    with pytest.raises(ConfigError, match=r"`finetuning_type: freeze` disagrees"):
        translate_v1({**LORA_SFT, "finetuning_type": "freeze"})


def test_command_line_overrides_win_over_a_v1_files_keys(tmp_path):
    """`lmforge train v1.yaml model_name_or_path=... lora_rank=8`: the command line wins, as over a v0.9 file (it
    was "disagrees with the v1 key that sets it"); the same keys written in the file still must agree."""
    path = tmp_path / "lora.yaml"
    path.write_text(json.dumps(LORA_SFT))
    cfg = load_config(path, ["model_name_or_path=builtin:smollm2", "lora_rank=8", "per_device_train_batch_size=2"])
    assert (cfg.model.model_name_or_path, cfg.finetuning.lora_rank) == ("builtin:smollm2", 8)
    assert cfg.training.per_device_train_batch_size == 2 and cfg.finetuning.lora_alpha == 32
    assert load_config(path, ["micro_batch_size=4"]).training.per_device_train_batch_size == 4  # a v1 name too
    path.write_text(json.dumps({**LORA_SFT, "lora_rank": 8}))
    with pytest.raises(ConfigError, match="disagrees"):
        load_config(path, ["learning_rate=1e-5"])


def test_v0_configs_are_not_v1_ones():
    assert not is_v1_config({"model_name_or_path": "m", "model_class": "AutoModelForCausalLM", "stage": "sft"})
    assert not is_v1_config({"model_name_or_path": "m", "global_batch_size": 64})  # a fork's v0.9 config
    assert is_v1_config({"model_name_or_path": "m", "model_class": "llm"}) and is_v1_config(LORA_SFT)
    assert build_config({"model_name_or_path": "m", "model_class": "AutoModelForCausalLM"}).notices == ()


@pytest.mark.slow
def test_a_v1_config_trains_as_written(llamafactory_folder):
    (llamafactory_folder / "lora.yaml").write_text(json.dumps(LORA_SFT))  # JSON is YAML
    result = run_cli("train", "lora.yaml", "max_steps=2", "cutoff_len=256", "max_samples=16",
                     cwd=llamafactory_folder)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "note: read as a LLaMA-Factory v1 config: stage sft, lora" in result.stdout
    assert "`fsdp` shards the model across processes; this run has one" in result.stdout.replace("\n", " ")
    summary = json.loads((llamafactory_folder / "outputs/test_lora/train_summary.json").read_text())
    assert summary["steps"] == 2


def test_the_shipped_v1_example_checks_from_the_repository_root(smollm2_path):
    result = run_cli("check", "examples/llamafactory_v1/lora_sft.yaml")  # run_cli works in the repository root
    assert result.returncode == 0, result.stderr[-2000:]
    assert "note: read as a LLaMA-Factory v1 config: stage sft, lora" in result.stdout
    assert "lora_sft.yaml: valid" in result.stdout and "- examples/llamafactory_v1/datasets.yaml" in result.stdout
