"""The output head and cross-entropy with their gradients computed in the forward pass (train/head_gradient.py):
the loss and every gradient of autograd's whole-logits cross-entropy, summed or per row, in float32 and under bf16
autocast, with ignored rows, a bias, several chunks and a trained or frozen head."""

import pytest
import torch
from torch.nn import functional

from lmforge.data.labels import IGNORE_INDEX
from lmforge.train import blocked_cross_entropy
from lmforge.train import loss as loss_module
from lmforge.train.head_gradient import head_cross_entropy

ROWS, WIDTH, VOCAB = 23, 16, 300


def _case(trains: bool, bias: bool) -> tuple[torch.nn.Linear, torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(WIDTH, VOCAB, bias=bias).requires_grad_(trains)
    with torch.no_grad():
        head.weight.copy_(torch.randn(VOCAB, WIDTH, generator=generator))
        if bias:
            head.bias.copy_(torch.randn(VOCAB, generator=generator))
    hidden = torch.randn(ROWS, WIDTH, generator=generator)
    targets = torch.randint(0, VOCAB, (ROWS,), generator=generator)
    targets[[2, 7, 22]] = IGNORE_INDEX
    row_grads = torch.rand(ROWS, generator=generator)  # a per-token gradient, as the preference losses give
    return head, hidden, targets, row_grads


def _losses_and_grads(losses_of, head: torch.nn.Linear, hidden: torch.Tensor, row_grads: torch.Tensor | None):
    head.zero_grad()
    leaf = hidden.clone().requires_grad_(True)
    losses = losses_of(leaf)
    (losses.sum() if row_grads is None else (losses * row_grads).sum()).backward()
    params = [p.grad.clone() for p in head.parameters() if p.grad is not None]
    return losses.detach(), [leaf.grad, *params]


def _whole(head, targets, summed):
    def losses(leaf):
        per_row = functional.cross_entropy(head(leaf).float(), targets, reduction="none")
        return per_row.sum() if summed else per_row
    return losses


def _ours(head, targets, summed, rows_per_chunk=5):
    return lambda leaf: head_cross_entropy(leaf, targets, head, rows_per_chunk, summed=summed)


@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias"])
@pytest.mark.parametrize("trains", [False, True], ids=["frozen", "trained"])
def test_a_summed_loss_and_its_gradients_in_float32(monkeypatch, trains, bias):
    monkeypatch.setattr(blocked_cross_entropy, "BLOCK_LOGITS", 2 * VOCAB)  # blocks of 2 rows in chunks of 5
    head, hidden, targets, _ = _case(trains, bias)
    loss, grads = _losses_and_grads(_ours(head, targets, summed=True), head, hidden, None)
    expected, expected_grads = _losses_and_grads(_whole(head, targets, summed=True), head, hidden, None)
    assert loss.dtype == torch.float32 and loss.shape == ()
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-6)
    assert len(grads) == len(expected_grads) == 1 + trains * (1 + bias)
    for ours, theirs in zip(grads, expected_grads, strict=True):
        assert ours.dtype == theirs.dtype == torch.float32
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    assert (grads[0][[2, 7, 22]] == 0).all()  # an ignored row has no gradient


def test_per_row_losses_take_each_rows_gradient():
    head, hidden, targets, row_grads = _case(trains=False, bias=True)
    losses, grads = _losses_and_grads(_ours(head, targets, summed=False), head, hidden, row_grads)
    expected, expected_grads = _losses_and_grads(_whole(head, targets, summed=False), head, hidden, row_grads)
    torch.testing.assert_close(losses, expected, rtol=1e-6, atol=1e-6)
    assert (losses[[2, 7, 22]] == 0).all() and len(grads) == 1
    torch.testing.assert_close(grads[0], expected_grads[0], rtol=1e-5, atol=1e-6)


def test_per_row_losses_refuse_a_trained_head():
    head, hidden, targets, _ = _case(trains=True, bias=False)
    with pytest.raises(ValueError, match="frozen head"):
        head_cross_entropy(hidden, targets, head, 5, summed=False)


@pytest.mark.parametrize("trains", [False, True], ids=["frozen", "trained"])
def test_under_autocast_as_close_as_the_recomputed_chunks(trains):
    """bf16 products, as the recomputing chunks (train/loss.py) compute them: the same loss to float32 rounding,
    gradients as far from float64's as theirs (one bf16 rounding of the logits' gradients each)."""
    head, hidden, targets, _ = _case(trains, bias=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, grads = _losses_and_grads(_ours(head, targets, summed=True), head, hidden, None)
        usual, usual_grads = _losses_and_grads(
            lambda leaf: loss_module._chunk_loss(leaf, targets, head), head, hidden, None)
    assert [g.dtype for g in grads] == [g.dtype for g in usual_grads] == [torch.float32] * (1 + trains)
    torch.testing.assert_close(loss, usual, rtol=1e-6, atol=1e-5)
    double = torch.nn.Linear(WIDTH, VOCAB, bias=False).double().requires_grad_(trains)
    with torch.no_grad():  # float64 from the bf16 values the products read
        double.weight.copy_(head.weight.to(torch.bfloat16).double())
    _, exact_grads = _losses_and_grads(_whole(double, targets, summed=True), double,
                                       hidden.to(torch.bfloat16).double(), None)
    for ours, theirs, exact in zip(grads, usual_grads, exact_grads, strict=True):
        assert (ours.double() - exact).abs().max() <= 2 * (theirs.double() - exact).abs().max() + 1e-6


def test_no_rows():
    head = torch.nn.Linear(4, 7)
    hidden = torch.zeros(0, 4, requires_grad=True)
    loss = head_cross_entropy(hidden, torch.zeros(0, dtype=torch.long), head, 5, summed=True)
    loss.backward()
    assert loss.item() == 0 and hidden.grad.shape == (0, 4) and head.weight.grad.abs().sum() == 0


def test_per_row_metrics_as_trls_fused_head_reports_them():
    """The metrics of the preference trainers (train/trl_head.py) from the same float32 values as the losses, as
    close to float64's as the recomputing chunks' metrics from the whole chunk's logits."""
    head, hidden, targets, row_grads = _case(trains=False, bias=False)
    targets[[0, 5]] = head(hidden[[0, 5]]).argmax(-1)  # two rows whose target is the model's first choice
    leaf = hidden.clone().requires_grad_(True)
    losses, *metrics = head_cross_entropy(leaf, targets, head, 5, summed=False, with_metrics=True)
    expected = loss_module._chunk_token_outputs(hidden, targets, head)
    torch.testing.assert_close(-losses.detach(), expected[0], rtol=1e-6, atol=1e-6)
    logits = hidden.double() @ head.weight.double().t()
    probs = logits.softmax(-1)
    exact = (logits.logsumexp(-1) - (probs * logits).sum(-1), (probs * probs).sum(-1).log(), logits.mean(-1))
    for ours, theirs, value in zip(metrics[:3], expected[1:4], exact, strict=True):
        # as close to float64's as the whole chunk's (closer for the entropy: no cancellation against log-sum-exp)
        assert not ours.requires_grad and ours.dtype == torch.float32
        assert (ours.double() - value).abs().max() <= max((theirs.double() - value).abs().max(), 1e-6)
    assert torch.equal(metrics[3], expected[4]) and metrics[3].sum() == 2
    (losses * row_grads).sum().backward()  # the losses keep their gradient beside the metrics
    _, grads = _losses_and_grads(_whole(head, targets, summed=False), head, hidden, row_grads)
    torch.testing.assert_close(leaf.grad, grads[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="per row"):
        head_cross_entropy(hidden, targets, head, 5, summed=True, with_metrics=True)
