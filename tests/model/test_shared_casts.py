"""Linear layers that read the same float32 input share one half-precision copy under autocast: the same loss
and gradients bit for bit, fewer casts, less kept for backward."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from lmforge.model.shared_casts import share_input_casts


def _model(path, finetuning: str, shared: bool):
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    if finetuning == "lora":  # random B as well, so the adapters' gradients are all non-zero
        model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    if shared:
        assert share_input_casts(model) > 0
    return model


def _step(model, ids: torch.Tensor, autocast: bool):
    """Loss, gradients, the bytes of the storages kept for backward, and the number of casts of one step."""
    kept: dict = {}

    def pack(tensor):
        kept[(tensor.untyped_storage().data_ptr(), tensor.dtype)] = tensor.untyped_storage().nbytes()
        return tensor

    with (torch.profiler.profile() as profile, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
          torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast)):
        loss = model(input_ids=ids, labels=ids, use_cache=False).loss
    loss.backward()
    casts = sum(event.count for event in profile.key_averages() if event.key == "aten::_to_copy")
    grads = {name: param.grad for name, param in model.named_parameters() if param.grad is not None}
    return loss.item(), grads, sum(kept.values()), casts


@pytest.mark.parametrize("finetuning", ["lora", "full"])
def test_shared_copies_change_no_number_and_keep_less(tiny_llama_path, finetuning):
    ids = torch.randint(0, 100, (2, 48), generator=torch.Generator().manual_seed(1))
    loss, grads, kept, casts = _step(_model(tiny_llama_path, finetuning, shared=False), ids, autocast=True)
    shared_loss, shared_grads, shared_kept, shared_casts = _step(_model(tiny_llama_path, finetuning, shared=True),
                                                                 ids, autocast=True)
    assert shared_loss == loss
    assert grads.keys() == shared_grads.keys() and len(grads) > 0
    for name, grad in grads.items():
        assert torch.equal(shared_grads[name], grad), name
    assert shared_casts < casts
    assert shared_kept < kept


def test_no_autocast_no_change(tiny_llama_path):
    ids = torch.randint(0, 100, (2, 48), generator=torch.Generator().manual_seed(1))
    plain = _step(_model(tiny_llama_path, "lora", shared=False), ids, autocast=False)
    hooked = _step(_model(tiny_llama_path, "lora", shared=True), ids, autocast=False)
    assert hooked[0] == plain[0] and hooked[2:] == plain[2:]


def test_an_input_changed_in_place_is_cast_again():
    linear_a, linear_b = torch.nn.Linear(8, 8), torch.nn.Linear(8, 8)
    model = torch.nn.ModuleDict({"a": linear_a, "b": linear_b})
    share_input_casts(model)
    hidden = torch.randn(4, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        first = linear_a(hidden)
        hidden.mul_(2.0)
        second = linear_b(hidden)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = torch.nn.functional.linear(hidden, linear_b.weight, linear_b.bias)
    assert first.dtype == torch.bfloat16
    assert torch.equal(second, expected)
