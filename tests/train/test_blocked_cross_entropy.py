"""Cross-entropy a few rows at a time with its backward written out (train/blocked_cross_entropy.py): the loss and
gradients of `F.cross_entropy` over float32 logits to float32 rounding, the gradient in the logits' dtype, ignored
rows contributing nothing."""

import pytest
import torch
from torch.nn import functional

from lmforge.data.labels import IGNORE_INDEX
from lmforge.train import blocked_cross_entropy
from lmforge.train.blocked_cross_entropy import token_cross_entropy


def _loss_and_gradient(loss_of, logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor):
    leaf = logits.detach().requires_grad_(True)
    losses = loss_of(leaf, targets)
    (gradient,) = torch.autograd.grad((losses * weights).sum(), leaf)
    return losses.detach(), gradient


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_losses_and_gradients_of_cross_entropy(monkeypatch, dtype):
    monkeypatch.setattr(blocked_cross_entropy, "BLOCK_LOGITS", 3 * 500)  # blocks of 3 rows, the last one short
    generator = torch.Generator().manual_seed(0)
    logits = (torch.randn(11, 500, generator=generator) * 4).to(dtype)
    targets = torch.randint(0, 500, (11,), generator=generator)
    targets[[2, 7]] = IGNORE_INDEX
    weights = torch.rand(11, generator=generator)  # a per-token gradient, as the preference losses give

    def plain(leaf, goals):
        return functional.cross_entropy(leaf.float(), goals, reduction="none")

    ours, ours_gradient = _loss_and_gradient(token_cross_entropy, logits, targets, weights)
    expected, expected_gradient = _loss_and_gradient(plain, logits, targets, weights)
    exact, exact_gradient = _loss_and_gradient(plain, logits.double(), targets, weights.double())
    assert ours.dtype == torch.float32 and ours_gradient.dtype == dtype
    torch.testing.assert_close(ours, expected, rtol=1e-6, atol=1e-6)
    assert (ours[[2, 7]] == 0).all() and (ours_gradient[[2, 7]] == 0).all()
    if dtype == torch.float32:
        torch.testing.assert_close(ours_gradient, expected_gradient, rtol=1e-5, atol=1e-7)
    else:  # one bf16 rounding of the same float32 values, give or take a float32 ulp before it
        error = (ours_gradient.double() - exact_gradient).abs().max()
        assert error <= (expected_gradient.double() - exact_gradient).abs().max() * 1.01
    assert (ours.double() - exact).abs().max() <= 1e-5


def test_no_rows():
    logits = torch.zeros(0, 7, requires_grad=True)
    losses = token_cross_entropy(logits, torch.zeros(0, dtype=torch.long))
    assert losses.shape == (0,)
    losses.sum().backward()
    assert logits.grad.shape == (0, 7)


def test_blocks_of_rows_on_a_cpu_and_one_block_elsewhere():
    logits = torch.zeros(11, 500)
    assert [(b.start, b.stop) for b in blocked_cross_entropy.row_blocks(logits)] == [(0, 524)]  # 524 rows a block
    on_meta = torch.zeros(11, 2**17, device="meta")  # an accelerator's tensor, as far as the blocks are concerned
    assert [(b.start, b.stop) for b in blocked_cross_entropy.row_blocks(on_meta)] == [(0, 11)]
    assert [(b.start, b.stop) for b in blocked_cross_entropy.row_blocks(torch.zeros(5, 2**17))] == [
        (0, 2), (2, 4), (4, 6)]
