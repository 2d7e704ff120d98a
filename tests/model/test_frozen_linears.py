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
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)  # elsewhere `bf16: true` trains in fp32
    assert precision.frozen_linears_in_bf16(build_config({"stage": "sft", **keys})) is expected


def _bf16_copy(source, out):
    """`source`'s checkpoint stored in bf16 (as most published ones are)."""
    from transformers import AutoTokenizer

    AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).to(torch.bfloat16).save_pretrained(out)
    AutoTokenizer.from_pretrained(source).save_pretrained(out)
    return out


def test_stored_float_dtype(tiny_llama_path, tmp_path):
    from safetensors.torch import load_file, save_file

    from lmforge.model.frozen_linears import stored_float_dtype

    assert stored_float_dtype(tiny_llama_path) == torch.float32
    stored = _bf16_copy(tiny_llama_path, tmp_path / "bf16")
    assert stored_float_dtype(stored) == torch.bfloat16
    tensors = load_file(stored / "model.safetensors")
    name = next(iter(tensors))
    save_file({**tensors, name: tensors[name].float()}, tmp_path / "bf16" / "model.safetensors")
    assert stored_float_dtype(stored) is None  # a float32 load would keep that weight's extra bits
    assert stored_float_dtype(tmp_path / "missing") is None
    (stored / "model.safetensors").write_bytes(b"not a checkpoint")
    assert stored_float_dtype(stored) is None  # loading names the broken file, not this check


def test_bf16_linears_load_is_the_float32_load(tmp_path):
    """Loaded straight in bf16, a bf16 checkpoint's linear weights stay bf16 and everything else is what a float32
    load makes of it, buffers the model computes included (Gemma 3's embedding scale, rounded in a bf16 build)."""
    from transformers import AutoConfig

    from lmforge.model.loading import load_model
    from lmforge.testing import build_tiny_model

    source = build_tiny_model(tmp_path / "fp32", family="gemma3_text")
    config = AutoConfig.from_pretrained(source)
    config.hidden_size = 48  # an embedding scale of sqrt(48), which bf16 rounds
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config, dtype=torch.float32).save_pretrained(source)
    stored = _bf16_copy(source, tmp_path / "bf16")
    args = build_config({"model_name_or_path": str(stored), "stage": "sft"}).model
    reference = load_model(args, dtype=torch.float32, cutoff_len=64)
    loaded = load_model(args, dtype=torch.float32, cutoff_len=64, bf16_linears=True)
    linears = {f"{name}.weight" for name, module in loaded.named_modules() if type(module) is torch.nn.Linear
               and module is not loaded.get_output_embeddings()}
    assert linears and all(loaded.get_parameter(name).dtype == torch.bfloat16 for name in linears)
    for name, param in loaded.named_parameters():
        assert param.dtype == (torch.bfloat16 if name in linears else torch.float32), name
        assert torch.equal(param.float(), reference.get_parameter(name)), name
    buffers = dict(reference.named_buffers(remove_duplicate=False))
    rounded = load_model(args, dtype=torch.bfloat16, cutoff_len=64)
    assert any(not torch.equal(buffer.float(), buffers[name])  # what the test guards: a bf16 build differs
               for name, buffer in rounded.named_buffers(remove_duplicate=False) if buffer.is_floating_point())
    for name, buffer in loaded.named_buffers(remove_duplicate=False):
        assert buffer.dtype == buffers[name].dtype and torch.equal(buffer, buffers[name]), name
    ids = torch.randint(0, 100, (1, 24), generator=torch.Generator().manual_seed(0))
    keep_frozen_linears_in_bf16(loaded)
    keep_frozen_linears_in_bf16(reference)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(loaded(input_ids=ids).logits, reference(input_ids=ids).logits)


@pytest.mark.parametrize(("keys", "expected"), [
    ({}, True),
    ({"use_dora": True}, False),  # DoRA's magnitudes are the base weights' norms
    ({"pissa_init": True}, False),  # PiSSA rewrites the base weights
    ({"adapter_name_or_path": "saves/lora"}, True),  # resumed: peft loads it into float32 adapters
    ({"adapter_name_or_path": "saves/a,saves/b"}, False),  # the first is merged into the base weights
    ({"adapter_name_or_path": "saves/lora", "create_new_adapter": True}, False),  # merged, then a new one
    ({"add_special_tokens": "<tool>"}, False),  # new embedding rows are drawn from the old ones
    ({"finetuning_type": "full"}, False),
])
def test_when_training_loads_them_in_bf16(monkeypatch, keys, expected):
    monkeypatch.setattr(precision, "_accelerator", lambda: False)
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    cfg = build_config({"stage": "sft", "finetuning_type": "lora", "bf16": True, **keys})
    assert precision.frozen_linears_loaded_in_bf16(cfg) is expected
