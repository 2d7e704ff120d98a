"""Loading options: attention, RoPE scaling, training from scratch, new tokens, CUDA-only speed-ups on CPU."""

import logging

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainingArguments

from lmforge.config import build_config
from lmforge.errors import ModelError
from lmforge.model.loading import load_tokenizer
from lmforge.train.precision import compute_dtype, training_defaults
from lmforge.train.runner import training_kwargs
from tests.model.conftest import config_for, load_configured

CPU_ONLY = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU behaviour")


def test_attention_choice_and_flash_attn_alias(tiny_family):
    path = tiny_family("llama")
    assert load_configured(config_for(path), dtype=torch.float32).config._attn_implementation == "sdpa"
    eager = load_configured(config_for(path, flash_attn="disabled"), dtype=torch.float32)
    assert eager.config._attn_implementation == "eager"


@CPU_ONLY
def test_cuda_only_speedups_are_accepted_and_say_they_do_not_apply(tiny_family, caplog):
    cfg = config_for(tiny_family("llama"), attn_implementation="flash_attention_2", enable_liger_kernel=True)
    with caplog.at_level(logging.WARNING, logger="lmforge"):
        model = load_configured(cfg, dtype=torch.float32)
    assert model.config._attn_implementation == "sdpa"
    assert "attn_implementation flash_attention_2 is not applicable: it needs a CUDA GPU; using sdpa" in caplog.text
    assert "enable_liger_kernel is not applicable: Liger kernels are Triton GPU kernels" in caplog.text


@CPU_ONLY
def test_cuda_only_training_switches_are_turned_off_on_cpu_with_a_warning(caplog):
    """Left on, transformers refuses them after the model has loaded: TF32 and NCCL when it builds the arguments,
    Liger at the first step (its Triton kernels)."""
    cfg = build_config({"use_liger_kernel": True, "tf32": True, "ddp_backend": "nccl"})
    with caplog.at_level(logging.WARNING, logger="lmforge"):
        kwargs = training_kwargs(cfg)
    assert (kwargs["use_liger_kernel"], kwargs["tf32"], kwargs["ddp_backend"]) == (False, None, None)
    for said in ("`use_liger_kernel: true` is not applicable: Liger kernels are Triton GPU kernels",
                 "`tf32: true` is not applicable: TF32 is a matmul mode of NVIDIA GPUs",
                 "`ddp_backend: nccl` is not applicable: NCCL connects CUDA GPUs"):
        assert said in caplog.text
    TrainingArguments(output_dir="unused", **kwargs)  # what transformers refused now passes
    assert training_kwargs(build_config({"tf32": False, "ddp_backend": "gloo"}))["ddp_backend"] == "gloo"


def test_rope_scaling_stretches_to_cutoff_len(tiny_family):
    cfg = config_for(tiny_family("qwen2"), rope_scaling="linear", cutoff_len=5000)  # trained for 2048
    config = load_configured(cfg, dtype=torch.float32).config
    assert config.rope_parameters["rope_type"] == "linear" and config.rope_parameters["factor"] == 3.0
    assert config.max_position_embeddings == 6144
    with pytest.raises(ModelError, match=r"`rope_scaling: linear`: model_type `t5` has no rotary position embedding"):
        load_configured(config_for(tiny_family("t5"), rope_scaling="linear", cutoff_len=5000), dtype=torch.float32)


def test_train_from_scratch_ignores_the_checkpoint_weights(tiny_family):
    path = tiny_family("llama")
    weights = load_file(path / "model.safetensors")
    model = load_configured(config_for(path, train_from_scratch=True), dtype=torch.float32)
    assert not torch.equal(model.model.embed_tokens.weight, weights["model.embed_tokens.weight"])
    assert load_configured(config_for(path), dtype=torch.float32).model.embed_tokens.weight.equal(
        weights["model.embed_tokens.weight"])


def test_new_tokens_resize_with_rows_near_the_mean(tiny_family):
    cfg = config_for(tiny_family("llama"), add_tokens="forgebot", add_special_tokens="<|tool|>,<|tool_end|>")
    tokenizer = load_tokenizer(cfg.model)
    assert tokenizer.convert_tokens_to_ids("<|tool|>") == 1024 + 1 and len(tokenizer) == 1024 + 3
    assert tokenizer.encode("<|tool|>", add_special_tokens=False) == [1025]
    embeddings = load_configured(cfg, dtype=torch.float32, tokenizer=tokenizer).get_input_embeddings().weight
    old, new = embeddings[:1024], embeddings[1024:]
    assert embeddings.shape[0] == 1027
    # new rows are drawn around the old mean, not left at zero or scaled like fresh noise
    assert (new.mean(0) - old.mean(0)).abs().max() < 3 * old.std(0).max()
    assert new.norm(dim=1).max() < 3 * old.norm(dim=1).mean()


@CPU_ONLY
def test_device_dependent_defaults_on_cpu(tiny_family):
    # the CPU's dtype and long-micro-batch checkpointing defaults: tests/train/test_precision.py
    cfg = config_for(tiny_family("llama"), bf16=False, cutoff_len=256)
    assert compute_dtype(cfg) == torch.float32
    assert training_defaults(cfg) == {"activation_checkpointing": False,
                                      "activation_checkpointing_kwargs": {"use_reentrant": False}}
    assert "activation_checkpointing" not in training_defaults(config_for(tiny_family("llama"),
                                                                          gradient_checkpointing=True))


def test_a_mistral_checkpoint_with_tekken_json_loads_the_tokenizer_that_reads_control_tokens_in_text(tmp_path):
    """With mistral-common installed, transformers would pick its tokenizer for a folder with `tekken.json`; that one
    reads `[INST]` written in text as its bytes, and lmforge tokenizes rendered text: the converted one is loaded."""
    from lmforge.testing.tiny_vlm_audio import write_tiny_tekken

    write_tiny_tekken(tmp_path / "tekken.json")
    (tmp_path / "config.json").write_text('{"model_type": "mistral"}')
    tokenizer = load_tokenizer(config_for(tmp_path).model)
    assert tokenizer.encode("[INST]hi[/INST]", add_special_tokens=False)[::3] == [3, 4]
