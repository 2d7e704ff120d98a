"""SFT losses that weight each supervised token's cross-entropy (LLaMA-Factory's `use_dft_loss`, `use_eaft_loss`,
`use_asft_loss`). The weights are computed from the logits without gradient, as the papers define them:

- DFT (Dynamic Fine-Tuning): the model's probability of the target token, so tokens it already finds likely
  count more and the loss behaves like on-policy RL rather than imitation.
- EAFT (entropy-adaptive): the entropy of the top-20 distribution / 3, to the power `eaft_alpha`: confident
  (low-entropy) positions count less.
- ASFT (anchored): DFT plus `asft_alpha` x KL(reference || model) at the supervised positions, which keeps the
  model near the reference (the base model, or the base with the adapter disabled).

Each returns the sum over supervised tokens; the trainer divides by the supervised-token count of the whole
(accumulated) batch, as transformers normalises the plain loss.
"""

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from lmforge.data.labels import IGNORE_INDEX

EAFT_TOP_K = 20
EAFT_ENTROPY_SCALE = 3.0


@dataclass(frozen=True)
class TokenLoss:
    kind: Literal["dft", "eaft", "asft"]
    alpha: float = 1.0  # eaft: the entropy weight's power; asft: the KL term's weight

    @property
    def needs_reference(self) -> bool:
        return self.kind == "asft"


def _weights(loss: TokenLoss, logits: torch.Tensor, per_token: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        if loss.kind in ("dft", "asft"):
            return torch.exp(-per_token)
        top = logits.topk(min(EAFT_TOP_K, logits.shape[-1]), dim=-1).values
        log_probs = top - top.logsumexp(dim=-1, keepdim=True)
        entropy = -(log_probs.exp() * log_probs).sum(dim=-1)
        return (entropy / EAFT_ENTROPY_SCALE).pow(loss.alpha)


def token_loss_sum(loss: TokenLoss, logits: torch.Tensor, targets: torch.Tensor,
                   reference_logits: torch.Tensor | None = None) -> torch.Tensor:
    """Sum of the weighted losses of rows `logits` [rows, vocab] predicting `targets` [rows] (IGNORE_INDEX rows
    count nothing); `reference_logits` (same shape) for ASFT's KL term."""
    logits = logits.float()
    keep = targets != IGNORE_INDEX
    per_token = F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX, reduction="none")
    total = (per_token * _weights(loss, logits, per_token) * keep).sum()
    if loss.kind == "asft":
        if reference_logits is None:
            raise ValueError("ASFT needs the reference model's logits")
        kl = F.kl_div(F.log_softmax(logits, dim=-1), F.log_softmax(reference_logits.float(), dim=-1),
                      log_target=True, reduction="none").sum(dim=-1)
        total = total + loss.alpha * (kl * keep).sum()
    return total
