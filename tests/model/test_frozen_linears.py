"""Frozen linear weights that bf16 holds exactly are stored in bf16 for CPU training under bf16 autocast: the
same numbers under autocast and outside it, half the memory, no per-step weight casts."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from lmforge.config import build_config
from lmforge.model.frozen_linears import keep_frozen_linears_in_bf16
from lmforge.train import precision


def _lora_model(path, bf16_values: bool, tied: bool = False):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, tie_word_embeddings=tied)
    if bf16_values:  # a checkpoint stored in bf16, loaded in float32 (as most are)
        for param in model.parameters():
            param.data = param.data.bfloat16().float()
    return get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))


def _loss_and_grads(model, ids, autocast: bool):
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = model(input_ids=ids, labels=ids, use_cache=False).loss
    loss.backward()
    return loss.item(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("tied", [False, True])
def test_bf16_values_kept_in_bf16_with_the_same_numbers(tiny_llama_path, tied):
    ids = torch.randint(0, 100, (2, 40), generator=torch.Generator().manual_seed(1))
    reference = _lora_model(tiny_llama_path, bf16_values=True, tied=tied)
    kept_model = _lora_model(tiny_llama_path, bf16_values=True, tied=tied)
    kept = keep_frozen_linears_in_bf16(kept_model)
    linears = [m for name, m in kept_model.named_modules() if name.endswith("base_layer")]
    assert kept == len(linears) > 0  # every projection; the output head is not LoRA-wrapped and stays float32
    assert all(m.weight.dtype == torch.bfloat16 for m in linears)
    head = kept_model.get_output_embeddings()
    assert head.weight.dtype == torch.float32 and kept_model.get_input_embeddings().weight.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in kept_model.parameters() if p.requires_grad)
    for autocast in (True, False):
        loss, grads = _loss_and_grads(reference, ids, autocast)
        kept_loss, kept_grads = _loss_and_grads(kept_model, ids, autocast)
        assert kept_loss == loss
        assert grads.keys() == kept_grads.keys()
        for name, grad in grads.items():
            assert torch.equal(kept_grads[name], grad), (autocast, name)


def test_weights_bf16_cannot_hold_stay_float32(tiny_llama_path):
    model = _lora_model(tiny_llama_path, bf16_values=False)
    assert keep_frozen_linears_in_bf16(model) == 0
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize(("keys", "expected"), [
    ({"finetuning_type": "lora", "bf16": True}, True),
    ({"finetuning_type": "full", "bf16": True}, False),  # the saved model holds every weight
    ({"finetuning_type": "lora", "bf16": False}, False),
    ({"finetuning_type": "lora", "pure_bf16": True}, False),  # bf16 weights throughout already
])
def test_when_cpu_training_keeps_them(monkeypatch, keys, expected):
    monkeypatch.setattr(precision, "_accelerator", lambda: False)
    assert precision.frozen_linears_in_bf16(build_config({"stage": "sft", **keys})) is expected
