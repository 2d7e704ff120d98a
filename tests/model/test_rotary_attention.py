"""The attention's rotation in one function (model/rotary_attention.py): transformers' forward to the bit, the
input's gradient as close to exact as autograd's, on Llama, Qwen2 and Mistral; generation keeps its forward."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from lmforge.model.packed_attention import packed_sequence_kwargs, use_packed_attention
from lmforge.model.rotary_attention import _rotated, rotate_in_one_function
from lmforge.testing.tiny import build_tiny_model


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_the_rotation_bit_for_bit_and_its_gradient_as_close_to_exact(dtype):
    generator = torch.Generator().manual_seed(0)
    states = torch.randn(2, 4, 24, 16, generator=generator).to(dtype)
    angles = torch.randn(2, 24, 8, generator=generator) * 3
    cos, sin = torch.cat([angles.cos()] * 2, -1), torch.cat([angles.sin()] * 2, -1)
    grad = torch.randn(2, 4, 24, 16, generator=generator).to(dtype)

    def rotated_by(rotate, states: torch.Tensor, cos, sin) -> tuple[torch.Tensor, torch.Tensor]:
        leaf = states.detach().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            output = rotate(leaf, cos, sin)
        return output, torch.autograd.grad(output, leaf, grad.to(output.dtype))[0]

    plain, plain_grad = rotated_by(lambda s, c, n: apply_rotary_pos_emb(s, s, c, n)[0], states, cos, sin)
    ours, grad_ours = rotated_by(_rotated, states, cos, sin)
    _, exact = rotated_by(lambda s, c, n: apply_rotary_pos_emb(s, s, c, n)[0], states.double(), cos.double(),
                          sin.double())
    # under autocast the attention function casts the rotated states to bf16 first: ours are written in it
    assert ours.dtype == dtype and torch.equal(ours, plain.to(dtype))
    assert grad_ours.dtype == dtype
    error, autograd_error = (grad_ours.double() - exact).abs().max(), (plain_grad.double() - exact).abs().max()
    assert error <= autograd_error


def _model(path, lora: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    if lora:
        model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    return model


def _loss_and_gradients(model, ids: torch.Tensor, packed: bool) -> tuple[float, dict[str, torch.Tensor]]:
    positions = torch.cat([torch.arange(20), torch.arange(28)]).repeat(ids.shape[0], 1) if packed else None
    extra = packed_sequence_kwargs(positions) if packed else {}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(input_ids=ids, labels=ids, position_ids=positions, use_cache=False, **extra).loss
    loss.backward()
    return loss.item(), {name: p.grad for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("family", ["llama", "qwen2", "mistral"])
@pytest.mark.parametrize(("lora", "packed"), [(True, True), (False, False)])
def test_a_training_step_the_same_loss_and_the_gradients_to_rounding(tmp_path, family, lora, packed):
    path = build_tiny_model(tmp_path / family, family)
    ids = torch.randint(0, 100, (2, 48), generator=torch.Generator().manual_seed(1))
    plain, rotated = _model(path, lora), _model(path, lora)
    if packed:
        assert use_packed_attention(plain) and use_packed_attention(rotated)
    assert rotate_in_one_function(rotated) == rotated.config.num_hidden_layers
    loss, grads = _loss_and_gradients(plain, ids, packed)
    rotated_loss, rotated_grads = _loss_and_gradients(rotated, ids, packed)
    assert rotated_loss == loss
    assert grads.keys() == rotated_grads.keys() and len(grads) > 0
    for name, grad in grads.items():  # one bf16 rounding of q's and k's gradients where autograd made two
        assert (rotated_grads[name] - grad).norm() <= 1e-2 * grad.norm(), name


def test_generation_keeps_transformers_forward(tiny_llama_path):
    plain, rotated = _model(tiny_llama_path, False), _model(tiny_llama_path, False)
    rotate_in_one_function(rotated)
    ids = torch.randint(0, 100, (1, 6), generator=torch.Generator().manual_seed(2))
    settings = {"max_new_tokens": 5, "do_sample": False}
    assert torch.equal(rotated.generate(ids, **settings), plain.generate(ids, **settings))


def test_other_attentions_are_left_alone(tmp_path):
    path = build_tiny_model(tmp_path / "gemma2", "gemma2")  # its own forward (soft-capping, scaling)
    assert rotate_in_one_function(_model(path, False)) == 0
