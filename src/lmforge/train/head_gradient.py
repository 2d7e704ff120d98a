"""The output head and cross-entropy with their gradients computed in the forward pass.

A causal LM's loss is a sum of per-token cross-entropies of `hidden @ head.T`, and the gradient of each token's
loss with respect to its logits, softmax - onehot, needs nothing the backward pass brings but one number per
token: the loss's gradient, by which it is multiplied. So the forward pass can compute, chunk by chunk of rows,
the logits, the loss and that unit gradient, and at once the products it feeds (its product with the head's
weight, the hidden states' gradient per unit of loss; and, where the head trains, with the hidden states, the
weight's), keeping only those: one [rows, hidden] tensor, and the weight's gradient where it trains. The backward
pass scales them by the loss's gradient.

The chunked loss's usual path (train/loss.py: each chunk under activation checkpointing) multiplies the head three
times for a frozen head (the logits, again in the backward pass, and the hidden states' gradient) and four times
for a trained one; here two and three, with one exponential per logit instead of three. A summed loss has one
gradient for every token, so a trained head's weight gradient is known in the forward pass too; per-token
log-probabilities (the preference stages) get a gradient per token, so they take this path only where the head is
frozen (LoRA, freeze).

The arithmetic is the usual path's: the products in the same dtype (autocast's, under autocast), the softmax from
float32 values of the logits as the products return them, the gradients of the logits rounded once to the logits'
dtype, the weight's gradient summed over chunks in float32. Only the scaling by the loss's gradient moves, from
before the products to after them (tests/train/test_head_gradient.py: loss and gradients equal to float32 rounding,
and to bf16 rounding under autocast).
"""

from typing import Any

import torch
import torch.nn.functional as F

from lmforge.data.labels import IGNORE_INDEX
from lmforge.train.blocked_cross_entropy import row_blocks


def _loss_and_unit_gradient(logits: torch.Tensor, targets: torch.Tensor, losses: torch.Tensor,
                            metrics: tuple[torch.Tensor, ...] | None = None) -> None:
    """Each row's cross-entropy into `losses` (float32, 0 where the target is ignored); `logits` is overwritten
    with the loss's gradient with respect to it, softmax - onehot (0 for an ignored row), in its own dtype. With
    `metrics` ([rows] tensors: entropy, log(sum of squared probabilities), mean logit, whether the target is the
    first argmax), those too, from the same float32 values."""
    supervised = targets != IGNORE_INDEX
    safe_targets = torch.where(supervised, targets, 0).unsqueeze(1)
    picked = logits.gather(1, safe_targets).squeeze(1).float()
    for block in row_blocks(logits):
        stored = logits[block]
        values = stored.float()  # a copy for half-precision logits, the logits themselves for float32 ones
        if metrics is not None:
            metrics[2][block], metrics[3][block] = values.mean(-1), values.argmax(-1) == targets[block]
        largest = values.amax(-1, keepdim=True)
        if metrics is None:
            values.sub_(largest).exp_()
            totals = values.sum(-1, keepdim=True)
            values.div_(totals)
        else:  # the shifted logits stay for the entropy: sum p log p = sum p (x - max) - log(total)
            shifted = values.sub_(largest)
            values = shifted.exp()
            totals = values.sum(-1, keepdim=True)
            values.div_(totals)
            metrics[0][block] = totals.log().squeeze(1) - torch.linalg.vecdot(values, shifted)
            metrics[1][block] = torch.linalg.vecdot(values, values).log()
        keep = supervised[block].unsqueeze(1)
        losses[block] = ((largest + totals.log()).squeeze(1) - picked[block]) * supervised[block]
        values.scatter_add_(1, safe_targets[block], torch.full_like(totals, -1.0)).mul_(keep)
        if values.data_ptr() != stored.data_ptr():
            stored.copy_(values)


class _HeadCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                targets: torch.Tensor, product_dtype: torch.dtype, summed: bool, rows_per_chunk: int,
                with_metrics: bool) -> torch.Tensor | tuple[torch.Tensor, ...]:
        rows = hidden.shape[0]
        product_weight = weight.detach().to(product_dtype)
        product_bias = None if bias is None else bias.detach().to(product_dtype)
        states = hidden.detach().to(product_dtype)
        losses = torch.empty(rows, dtype=torch.float32, device=hidden.device)
        unit_grad_hidden = torch.empty_like(states)
        unit_grad_weight = torch.zeros_like(weight, dtype=torch.float32) if ctx.needs_input_grad[1] else None
        unit_grad_bias = torch.zeros_like(bias, dtype=torch.float32) if ctx.needs_input_grad[2] else None
        metrics = None
        if with_metrics:
            metrics = (*(torch.empty_like(losses) for _ in range(3)), torch.empty(rows, dtype=torch.bool,
                                                                                   device=hidden.device))
        with torch.autocast(hidden.device.type, enabled=False):  # the products in `product_dtype`, as cast above
            for start in range(0, rows, rows_per_chunk):
                part = slice(start, start + rows_per_chunk)
                logits = F.linear(states[part], product_weight, product_bias)
                _loss_and_unit_gradient(logits, targets[part], losses[part],
                                        None if metrics is None else tuple(m[part] for m in metrics))
                torch.mm(logits, product_weight, out=unit_grad_hidden[part])
                if unit_grad_weight is not None:
                    unit_grad_weight += logits.t() @ states[part]
                if unit_grad_bias is not None:
                    unit_grad_bias += logits.sum(0, dtype=torch.float32)
        ctx.save_for_backward(unit_grad_hidden, unit_grad_weight, unit_grad_bias)
        ctx.summed, ctx.hidden_dtype = summed, hidden.dtype
        if metrics is None:
            return losses.sum() if summed else losses
        ctx.mark_non_differentiable(*metrics)
        return losses, *metrics

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor, *metrics_grads: Any) -> tuple[torch.Tensor | None, ...]:
        unit_grad_hidden, unit_grad_weight, unit_grad_bias = ctx.saved_tensors
        per_row = grad if ctx.summed else grad.unsqueeze(1)
        grad_hidden = (unit_grad_hidden.float() * per_row).to(ctx.hidden_dtype) if ctx.needs_input_grad[0] else None
        # a per-row loss with a trained head never gets here (head_cross_entropy refuses it): `grad` is one number
        grad_weight = None if unit_grad_weight is None else unit_grad_weight * grad
        grad_bias = None if unit_grad_bias is None else unit_grad_bias * grad
        return grad_hidden, grad_weight, grad_bias, None, None, None, None, None


def head_cross_entropy(hidden: torch.Tensor, targets: torch.Tensor, head: torch.nn.Linear, rows_per_chunk: int,
                       summed: bool, with_metrics: bool = False) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """The cross-entropy of `head(hidden)` ([rows, hidden] -> [rows, vocab]) against `targets` ([rows], 0 where
    IGNORE_INDEX), in float32: summed over rows (`summed`), or one per row (a frozen head only: each row's gradient
    differs, which a trained weight's gradient computed in the forward pass cannot follow). Gradients flow to
    `hidden` and to the head's parameters that train; the logits are computed `rows_per_chunk` rows at a time and
    never kept. `with_metrics` (per row): the losses, then without gradient each row's entropy, log(sum of squared
    probabilities), mean logit and whether the target is the first argmax, as trl's fused head reports them."""
    weight, bias = head.weight, head.bias
    if not summed and (weight.requires_grad or (bias is not None and bias.requires_grad)):
        raise ValueError("per-row head cross-entropy needs a frozen head: a trained head's gradient would need "
                         "each row's loss gradient in the forward pass")
    if summed and with_metrics:
        raise ValueError("the metrics are per row: ask for per-row losses (summed=False)")
    device = hidden.device.type
    product_dtype = (torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device)
                     else torch.promote_types(hidden.dtype, weight.dtype))
    return _HeadCrossEntropy.apply(hidden, weight, bias, targets, product_dtype, summed, rows_per_chunk,
                                   with_metrics)
