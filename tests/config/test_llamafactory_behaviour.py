"""LLaMA-Factory keys that map onto existing behaviour reach the code that uses them."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, TrainingArguments

from lmforge.config import build_config
from lmforge.errors import ConfigError


def _training_arguments(tmp_path, raw):
    from lmforge.train.runner import training_kwargs

    return TrainingArguments(output_dir=str(tmp_path), **training_kwargs(build_config(raw)))


def test_gradient_checkpointing_switches_reach_training_arguments(tmp_path):
    args = _training_arguments(tmp_path, {"disable_gradient_checkpointing": True, "use_reentrant_gc": True})
    assert args.activation_checkpointing is False
    assert args.activation_checkpointing_kwargs == {"use_reentrant": True}
    on = _training_arguments(tmp_path, {"disable_gradient_checkpointing": False})
    assert on.activation_checkpointing is True


def test_disable_shuffling_trains_in_dataset_order(tmp_path):
    assert _training_arguments(tmp_path, {"disable_shuffling": True}).train_sampling_strategy == "sequential"
    assert _training_arguments(tmp_path, {"disable_shuffling": False}).train_sampling_strategy == "random"


def test_fsdp_given_as_a_list_reads_as_transformers_options():
    cfg = build_config({"fsdp": ["full_shard", "auto_wrap"]})
    assert cfg.training.fsdp == "full_shard auto_wrap"
    assert cfg.training.trainer_kwargs()["fsdp_config"] == {"reshard_after_forward": True}  # with `fsdp: true`
    assert build_config({"fsdp": "full_shard auto_wrap"}).training.fsdp == "full_shard auto_wrap"


def test_pure_bf16_loads_and_computes_in_bf16_without_autocast():
    from lmforge.train.precision import compute_dtype, training_defaults, training_load_dtype

    cfg = build_config({"pure_bf16": True, "finetuning_type": "full"})
    assert compute_dtype(cfg) == torch.bfloat16 and training_load_dtype(cfg) == torch.bfloat16
    assert "bf16" not in training_defaults(cfg) and "fp16" not in training_defaults(cfg)
    assert training_load_dtype(build_config({"finetuning_type": "full"})) == torch.float32
    with pytest.raises(ConfigError, match="remove `fp16: true`"):
        build_config({"pure_bf16": True, "fp16": True})


def test_loraplus_lr_embedding_sets_the_embedding_adapters_learning_rate(tmp_path):
    from peft import LoraConfig, get_peft_model

    from lmforge.model.lora import loraplus_optimizer

    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2))
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["embed_tokens", "q_proj"]))
    cfg = build_config({"loraplus_lr_ratio": 16, "loraplus_lr_embedding": 3e-5, "learning_rate": 1e-4})
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-4, use_cpu=True)
    optimizer = loraplus_optimizer(peft_model, cfg.finetuning, args)
    rates = {group["lr"] for group in optimizer.param_groups if group["params"]}
    assert rates == {1e-4, 16e-4, 3e-5}


def test_preserve_thinking_keeps_thoughts_of_earlier_turns():
    from lmforge.data.templates.select import run_template

    assert run_template(build_config({"template": "qwen3"}).model, None).thoughts_in_history is False
    kept = build_config({"template": "qwen3", "preserve_thinking": True})
    assert run_template(kept.model, None, preserve_thinking=kept.data.preserve_thinking).thoughts_in_history


def test_resize_vocab_grows_embeddings_to_the_tokenizer():
    from lmforge.model.vocab import resize_for_new_tokens
    from lmforge.testing.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    rows = len(tokenizer) - 4

    def model():
        return LlamaForCausalLM(LlamaConfig(vocab_size=rows, hidden_size=16, intermediate_size=32,
                                            num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2))

    kept, grown = model(), model()
    resize_for_new_tokens(kept, tokenizer, build_config({}).model)
    resize_for_new_tokens(grown, tokenizer, build_config({"resize_vocab": True}).model)
    assert kept.get_input_embeddings().weight.shape[0] == rows
    assert grown.get_input_embeddings().weight.shape[0] == len(tokenizer)


def test_export_device_auto_merges_on_the_gpu_when_there_is_one(monkeypatch):
    from lmforge.export.pipeline import merge_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert merge_device(build_config({"export_device": "auto"}).export) == "cuda"
    assert merge_device(build_config({"export_device": "cpu"}).export) == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert merge_device(build_config({"export_device": "auto"}).export) == "cpu"


def test_special_tokens_config_file_problems_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"`new_special_tokens_config`: no such file: .*absent.yaml"):
        build_config({"new_special_tokens_config": str(tmp_path / "absent.yaml")})
    listed = tmp_path / "list.yaml"
    listed.write_text("- <a>\n- <b>\n")
    with pytest.raises(ConfigError, match="must map each new special token to a description"):
        build_config({"new_special_tokens_config": str(listed)})


def test_new_special_tokens_are_described_by_a_mapping_or_llamafactorys_file(tmp_path):
    described = {"<|plan|>": "a plan written first", "<|plan_end|>": "the end of the plan"}
    cfg = build_config({"add_special_tokens": described, "init_special_tokens": "desc_init"})
    assert cfg.model.add_special_tokens == list(described) and cfg.model.special_token_descriptions == described
    listed = tmp_path / "tokens.yaml"
    listed.write_text("".join(f'"{token}": {text}\n' for token, text in described.items()))
    cfg = build_config({"new_special_tokens_config": str(listed), "init_special_tokens": "desc_init_w_noise"})
    assert cfg.model.add_special_tokens == list(described) and cfg.model.special_token_descriptions == described


@pytest.mark.parametrize(("keys", "message"), [
    ({"init_special_tokens": "desc_init"}, r"`init_special_tokens: desc_init` initialises new special tokens: set "
                                           r"`add_special_tokens`"),
    ({"init_special_tokens": "desc_init", "add_special_tokens": "<a>"},
     r"starts each new special token at the average embedding of its description; `<a>` has none: give "
     r"`add_special_tokens` as a mapping"),
    ({"add_special_tokens": {"<a>": "  "}}, r"the description of `<a>` is empty"),
    ({"add_special_tokens": "<a>", "special_token_descriptions": {"<b>": "bee"}},
     r"describes `<b>`, which `add_special_tokens` does not add"),
    ({"add_special_tokens": {"<a>": "a"}, "special_token_descriptions": {"<a>": "a"}},
     r"`add_special_tokens` as a mapping already describes the tokens: remove `special_token_descriptions`"),
])
def test_special_token_descriptions_mistakes_are_caught(keys, message):
    with pytest.raises(ConfigError, match=message):
        build_config(keys)


@pytest.mark.parametrize("key", ["disable_gradient_checkpointing", "use_reentrant_gc", "disable_shuffling"])
def test_mapped_switches_take_only_true_or_false(key):
    with pytest.raises(ConfigError, match=rf"`{key}`: must be true or false, got 'false'"):
        build_config({key: "false"})


def test_sortish_sampler_groups_by_length_and_off_asks_for_nothing(tmp_path):
    assert _training_arguments(tmp_path, {"sortish_sampler": True}).train_sampling_strategy == "group_by_length"
    off = build_config({"sortish_sampler": False, "disable_shuffling": True})  # both written out: no conflict
    assert off.training.train_sampling_strategy == "sequential"
    assert "train_sampling_strategy" not in build_config({"sortish_sampler": False}).training.model_fields_set
