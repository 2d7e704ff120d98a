"""RMSNorm with its backward written out (model/rms_norm.py): transformers' forward bit for bit, gradients as
close to exact as autograd's, only the input and the scale kept."""

import pytest
import torch
from transformers.models.llama.modeling_llama import LlamaRMSNorm

from lmforge.model.rms_norm import fuse_rms_norms


def _norm(trained: bool) -> LlamaRMSNorm:
    torch.manual_seed(0)
    norm = LlamaRMSNorm(96, eps=1e-5)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
    norm.weight.requires_grad_(trained)
    return norm


def _gradients(norm: torch.nn.Module, hidden: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
    leaf = hidden.detach().requires_grad_(True)
    output = norm(leaf)
    inputs = (leaf, norm.weight) if norm.weight.requires_grad else (leaf,)
    return output.detach(), *torch.autograd.grad(output, inputs, grad)


@pytest.mark.parametrize("trained", [False, True])
def test_forward_bit_for_bit_and_gradients_as_close_to_exact(trained):
    hidden = torch.randn(3, 40, 96, generator=torch.Generator().manual_seed(1)) * 4
    grad = torch.randn(3, 40, 96, generator=torch.Generator().manual_seed(2))
    plain = _gradients(_norm(trained), hidden, grad)
    fused_norm = _norm(trained)
    assert fuse_rms_norms(fused_norm) == 1
    fused = _gradients(fused_norm, hidden, grad)
    exact = _gradients(_norm(trained).double(), hidden.double(), grad.double())
    assert torch.equal(fused[0], plain[0])
    for ours, autograds, reference in zip(fused[1:], plain[1:], exact[1:], strict=True):
        error, autograd_error = (ours - reference).abs().max(), (autograds - reference).abs().max()
        assert error <= 2 * autograd_error + 1e-7 * reference.abs().max()


def test_only_the_input_and_the_scale_are_kept():
    norm = _norm(trained=True)
    fuse_rms_norms(norm)
    hidden = torch.randn(2, 8, 96, requires_grad=True)
    output = norm(hidden)
    kept = output.grad_fn.saved_tensors
    assert [tuple(t.shape) for t in kept] == [(2, 8, 96), (96,), (2, 8, 1)]
    assert kept[0] is hidden or kept[0].data_ptr() == hidden.data_ptr()


def test_without_gradients_or_float32_the_class_forward():
    norm = _norm(trained=False)
    fuse_rms_norms(norm)
    hidden = torch.randn(2, 8, 96)
    assert norm(hidden).grad_fn is None  # nothing to differentiate: transformers' own forward, no function
    half = _norm(trained=True).to(torch.bfloat16)
    fuse_rms_norms(half)
    assert type(half(hidden.to(torch.bfloat16).requires_grad_()).grad_fn).__name__ == "MulBackward0"
