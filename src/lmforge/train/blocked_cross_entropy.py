"""Cross-entropy of a chunk of logits, a few rows at a time.

The chunked loss (train/loss.py) hands `F.cross_entropy` one chunk of logits at a time: ~64 MiB of float32 for
SmolLM2's 49k vocabulary. Through autograd that chunk is cast to float32 (a copy the size of the chunk),
log-softmaxed into another, and in the backward pass a zero-filled gradient of that size is scattered into, passed
through log-softmax's backward into a third and cast back to the logits' dtype: each a pass over tens of MiB that no
cache holds, and the forward runs twice (the chunk is recomputed under checkpointing). `token_cross_entropy`
computes the same per-token loss, log(sum(exp(x))) - x[target], with its backward written out, on a CPU a block of
rows at a time (~1 MiB of float32; elsewhere the whole chunk at once): the forward keeps one log-sum-exp per row and
the logits as they come (bf16 under autocast), the backward writes each block's gradient, (softmax - onehot) x the
row's gradient, straight into the logits' dtype. The same float32 arithmetic in another order (the loss and
gradients equal to float32 rounding: tests/train/test_blocked_cross_entropy.py); one chunk of SmolLM2-135M's head,
320 rows, forward and backward, 2-core Intel Xeon with AMX: ~13 vs ~26 ms.
"""

from collections.abc import Iterator
from typing import Any

import torch

from lmforge.data.labels import IGNORE_INDEX

# logits per block on a CPU (float32: 1 MiB, what its caches hold): 5 rows of a 49k vocabulary, 1 of a 151k one
BLOCK_LOGITS = 2**18


def row_blocks(logits: torch.Tensor) -> Iterator[slice]:
    """Slices of `logits`' rows ([rows, vocab]) to compute a few at a time: blocks of `BLOCK_LOGITS` on a CPU; one
    block of all the rows on an accelerator, where each block's kernels would cost a launch apiece and no cache
    is to be kept to."""
    rows, vocab = logits.shape
    step = max(1, BLOCK_LOGITS // max(vocab, 1)) if logits.device.type == "cpu" else max(rows, 1)
    return (slice(start, start + step) for start in range(0, rows, step))


class _TokenCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        supervised = targets != IGNORE_INDEX
        safe_targets = torch.where(supervised, targets, 0)
        log_totals = torch.empty(logits.shape[0], dtype=torch.float32, device=logits.device)
        for block in row_blocks(logits):
            torch.logsumexp(logits[block].float(), -1, out=log_totals[block])
        picked = logits.gather(1, safe_targets.unsqueeze(1)).squeeze(1).float()
        ctx.save_for_backward(logits, log_totals, safe_targets, supervised)
        return (log_totals - picked) * supervised

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        logits, log_totals, safe_targets, supervised = ctx.saved_tensors
        weights = (grad * supervised).unsqueeze(1)  # an ignored row's gradient is 0
        grad_logits = torch.empty_like(logits)
        with torch.autocast(logits.device.type, enabled=False):
            for block in row_blocks(logits):
                values = logits[block].to(torch.float32, copy=True)
                values.sub_(log_totals[block].unsqueeze(1)).exp_().mul_(weights[block])  # softmax x grad
                values.scatter_add_(1, safe_targets[block].unsqueeze(1), -weights[block])  # - onehot x grad
                grad_logits[block] = values
        return grad_logits, None


def token_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per row of `logits` ([rows, vocab], any float dtype), the cross-entropy of its target in float32; 0 where the
    target is `IGNORE_INDEX`. The gradient comes back in the logits' dtype."""
    return _TokenCrossEntropy.apply(logits, targets)
