"""Causal-LM loss without materialising whole logits.

The usual path computes `batch x length x vocab` logits (1.2 GB in fp32 for one 2,048-token row
with a 151k vocabulary), then a log-softmax and a gradient of the same size. Here the decoder's
hidden states are gathered at supervised positions only (prompt tokens need no logits), and the
output head + cross-entropy run chunk by chunk: when training, with the head's gradients computed in the
forward pass (train/head_gradient.py; per-token log-probabilities only where the head is frozen), otherwise
each chunk under activation checkpointing, so that each chunk's logits exist only while that chunk is
computed. The sum is normalised exactly as transformers does (by `num_items_in_batch`), so losses and
gradients equal the usual path's.

It is used only for architectures whose logits are a plain `lm_head(hidden)`: no soft-capping,
logit scaling or mixture-of-experts auxiliary loss, which this path would silently drop.
"""

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from lmforge.data.labels import IGNORE_INDEX
from lmforge.model.recast_weights import keeps_weight_copy
from lmforge.model.shared_casts import cast_reader
from lmforge.train.blocked_cross_entropy import token_cross_entropy
from lmforge.train.head_gradient import head_cross_entropy
from lmforge.train.token_losses import TokenLoss, token_loss_sum

PLAIN_HEAD_MODEL_TYPES = frozenset({
    "llama", "mistral", "qwen2", "qwen3", "gemma", "phi3", "olmo", "olmo2", "starcoder2", "smollm3", "glm",
    "helium", "granite_speech_text",
})
# Chunks of ~64 MiB of fp32 logits: a chunk's backward holds three buffers of that size (log-softmax, its
# gradient, the input's), a third of SmolLM2-135M's peak live tensors for 4 x 512 tokens with 128 MiB chunks;
# 320-row chunks there run as fast as 640-row ones (1.0-1.1 s for 1,728 rows either way, Intel Xeon with AMX)
LOGITS_PER_CHUNK = 2**24
# Up to this many logits the head runs whole, without the chunks' recomputation (short batches, little else alive)
LOGITS_WHOLE = 2**25
# chunked_token_outputs keeps two [rows, vocab] buffers more (the probabilities of its metrics) and runs where
# memory is the point (the preference stages); 32 MiB chunks took the head's peak for a 2 x 1,910-token pair of
# SmolLM2-135M from +659 to +398 MiB of RSS
TOKEN_OUTPUTS_PER_CHUNK = 2**23
ROWS_MULTIPLE = 64


def plain_head_parts(model: Any) -> tuple[torch.nn.Module, torch.nn.Linear] | None:
    """(decoder, output head) when the model's logits are exactly `head(decoder(...))`, else None."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if getattr(base.config, "model_type", None) not in PLAIN_HEAD_MODEL_TYPES:
        return None
    head = base.get_output_embeddings()
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
    if decoder is None or not isinstance(head, torch.nn.Linear):
        return None  # e.g. an output head wrapped by `additional_target`
    return decoder, head


def _supervised_positions(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(row, flat index into hidden as [batch * length, width], label) of every position that predicts a
    supervised label. The count is padded to a multiple of ROWS_MULTIPLE with ignored labels at index 0
    (cross-entropy skips them), so the head's matmul sees few distinct shapes: oneDNN (`cpu_matmul`) builds a
    kernel for each new one."""
    length = labels.shape[1]
    targets = labels[:, 1:]
    rows, positions = (targets != IGNORE_INDEX).nonzero(as_tuple=True)
    index = rows * length + positions  # the last position predicts nothing
    goals = targets[rows, positions]
    padding = -index.shape[0] % ROWS_MULTIPLE
    if padding:
        rows = torch.cat([rows, rows.new_zeros(padding)])
        index = torch.cat([index, index.new_zeros(padding)])
        goals = torch.cat([goals, goals.new_full((padding,), IGNORE_INDEX)])
    return rows, index, goals


def _supervised_rows(hidden: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The hidden states that predict a supervised label, and those labels, as [rows, hidden] and [rows]."""
    batch, length, width = hidden.shape
    _, index, goals = _supervised_positions(labels)
    return hidden.reshape(batch * length, width)[index], goals


def _head_for_chunks(head: torch.nn.Linear, device_type: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The head as the chunks call it. A float32 head under autocast multiplies one half-precision copy of its
    weight, made here for all the chunks and their recomputation in the backward pass, instead of a cast per chunk
    and pass (SmolLM2-135M's [49152, 576] head at 4 x 512 tokens: 12 casts a step, ~110 ms of ~3.6 s for LoRA on an
    Intel Xeon with AMX, the job 1.04x; ~220 ms of ~5 s in full fine-tuning). The same cast, so the same numbers;
    a head that trains gets the copy through its own cast-gradient node per chunk, so its gradient is still cast to
    float32 chunk by chunk and summed in float32. A head that keeps its copy already stays as it is. SFT's loss only:
    the copy stays alive over all the chunks (+45-50 MiB of peak RSS on that job), and the preference stages'
    log-probabilities, whose chunks are there for memory, gained no time from it (DPO on SmolLM2 at 2,048 tokens,
    one step of 8 pairs: 52.8 vs 53.3 s, 2,362 vs 2,312 MiB). Since the head's gradients are computed in the
    forward pass when training (train/head_gradient.py), these chunks run for the token-weighted losses (DFT, EAFT)
    and without gradients (evaluation)."""
    weight = head.weight
    if weight.dtype != torch.float32 or keeps_weight_copy(head) or not torch.is_autocast_enabled(device_type):
        return head
    copy, bias = weight.detach().to(torch.get_autocast_dtype(device_type)), head.bias
    if weight.requires_grad:
        return lambda hidden: F.linear(hidden, cast_reader(weight, copy), bias)
    return lambda hidden: F.linear(hidden, copy, bias)  # autocast casts `hidden` as it would have


def _frozen(head: torch.nn.Module) -> bool:
    """Whether none of the head's parameters trains (LoRA, freeze): per-token losses may then take the head's
    gradient in the forward pass."""
    return not any(part.requires_grad for part in head.parameters())


def _chunk_loss(hidden: torch.Tensor, targets: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor],
                weighting: TokenLoss | None = None) -> torch.Tensor:
    if weighting is not None:
        return token_loss_sum(weighting, head(hidden), targets)
    return token_cross_entropy(head(hidden), targets).sum()


def _chunk_logps(hidden: torch.Tensor, targets: torch.Tensor, head: torch.nn.Module) -> torch.Tensor:
    return -token_cross_entropy(head(hidden), targets)  # 0 where the label is ignored


def _rows_per_chunk(head: torch.nn.Linear, logits: int | None = None) -> int:
    """Rows per chunk for `logits` (default `LOGITS_PER_CHUNK`) at a time."""
    budget = LOGITS_PER_CHUNK if logits is None else logits
    return max(ROWS_MULTIPLE, budget // head.out_features // ROWS_MULTIPLE * ROWS_MULTIPLE)


def chunked_answer_logps(decoder: torch.nn.Module, head: torch.nn.Linear, inputs: dict[str, Any],
                         labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of the supervised tokens' log-probabilities, their count clamped to 1) per row, as the preference
    losses need them: from the hidden states, the head and log-softmax run chunk by chunk under activation
    checkpointing, so no row's whole logits exist at once (forward or backward)."""
    model_inputs = {key: value for key, value in inputs.items() if key != "use_cache"}
    hidden = decoder(**model_inputs, use_cache=False).last_hidden_state
    batch, length, width = hidden.shape
    rows, index, goals = _supervised_positions(labels)
    hidden = hidden.reshape(batch * length, width)[index]
    chunk = _rows_per_chunk(head)
    if torch.is_grad_enabled() and _frozen(head):
        per_token = -head_cross_entropy(hidden, goals, head, chunk, summed=False)  # gradients in the forward pass
        total = per_token.new_zeros(batch).index_add(0, rows, per_token)
        return total, (labels[:, 1:] != IGNORE_INDEX).sum(-1).clamp(min=1)
    pieces = []
    for start in range(0, goals.shape[0], chunk):
        piece, goal = hidden[start:start + chunk], goals[start:start + chunk]
        if torch.is_grad_enabled() and goals.shape[0] > chunk:
            pieces.append(checkpoint(_chunk_logps, piece, goal, head, use_reentrant=False))
        else:
            pieces.append(_chunk_logps(piece, goal, head))
    per_token = torch.cat(pieces) if pieces else hidden.new_zeros(0, dtype=torch.float32)
    total = per_token.new_zeros(batch).index_add(0, rows, per_token)
    count = (labels[:, 1:] != IGNORE_INDEX).sum(-1).clamp(min=1)
    return total, count


def _chunk_token_outputs(hidden: torch.Tensor, targets: torch.Tensor, head: torch.nn.Module
                         ) -> tuple[torch.Tensor, ...]:
    """The log-probability of each target (with gradient) and, without gradient, the metrics trl's fused head
    reports: entropy, log(sum of squared probabilities), mean logit, whether the target is the first argmax."""
    logits = head(hidden).float()
    log_probs = -F.cross_entropy(logits, targets, reduction="none")
    with torch.no_grad():  # one more [rows, vocab] buffer: the probabilities; the sums are batched dot products
        log_z = logits.logsumexp(-1)
        probs = (logits - log_z.unsqueeze(-1)).exp_().unsqueeze(1)
        entropy = log_z - (probs @ logits.unsqueeze(2)).view(-1)
        log_sum_sq = (probs @ probs.transpose(1, 2)).view(-1).log()
        return log_probs, entropy, log_sum_sq, logits.mean(-1), logits.argmax(-1) == targets


def chunked_token_outputs(decoder: torch.nn.Module, head: torch.nn.Linear, inputs: dict[str, Any],
                          labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per next-token position, as [batch, length - 1] tensors that are 0 (False) where the label is ignored:
    the label's log-probability (with gradient), then the entropy, log(sum of squared probabilities), mean logit
    and top-1 flag (without). Only supervised positions are scored, chunk by chunk, so no chunk's logits outlive
    it: with a frozen head's gradients computed in the forward pass when gradients are on, else under activation
    checkpointing (a trained head; the reference pass keeps none)."""
    hidden = decoder(**inputs).last_hidden_state
    batch, length, width = hidden.shape
    _, index, goals = _supervised_positions(labels)
    hidden = hidden.reshape(batch * length, width)[index]
    chunk = _rows_per_chunk(head, TOKEN_OUTPUTS_PER_CHUNK)
    if torch.is_grad_enabled() and _frozen(head):
        # gradients in the forward pass (train/head_gradient.py), the metrics from the same values
        losses, *metrics = head_cross_entropy(hidden, goals, head, chunk, summed=False, with_metrics=True)
        pieces = [(-losses, *metrics)]
    else:
        pieces = []
        for start in range(0, max(goals.shape[0], 1), chunk):  # no supervised label: one empty chunk, still a graph
            piece, goal = hidden[start:start + chunk], goals[start:start + chunk]
            if torch.is_grad_enabled() and goals.shape[0] > chunk:
                pieces.append(checkpoint(_chunk_token_outputs, piece, goal, head, use_reentrant=False))
            else:
                pieces.append(_chunk_token_outputs(piece, goal, head))
    mask = labels[:, 1:] != IGNORE_INDEX
    real = int(mask.sum())  # the padding rows `_supervised_positions` appends come last
    outputs = []
    for values in zip(*pieces, strict=True):
        flat = torch.cat(values)[:real]
        outputs.append(flat.new_zeros(mask.shape).masked_scatter(mask, flat))  # stays in the graph, as trl's does
    return tuple(outputs)


def _recomputed_chunks_loss(hidden: torch.Tensor, targets: torch.Tensor, head: torch.nn.Linear,
                            weighting: TokenLoss | None) -> torch.Tensor:
    """The summed loss of supervised rows, chunk by chunk, each chunk under activation checkpointing when gradients
    are on (recomputed in the backward pass) and whole when the logits are few."""
    if targets.shape[0] * head.out_features <= LOGITS_WHOLE:  # small enough whole: no recomputation
        return _chunk_loss(hidden, targets, head, weighting)
    chunk = _rows_per_chunk(head)
    head_call = _head_for_chunks(head, hidden.device.type)
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, targets.shape[0], chunk):
        piece, goal = hidden[start:start + chunk], targets[start:start + chunk]
        if torch.is_grad_enabled():
            total = total + checkpoint(_chunk_loss, piece, goal, head_call, weighting, use_reentrant=False)
        else:
            total = total + _chunk_loss(piece, goal, head_call, weighting)
    return total


def chunked_causal_lm_loss(
    decoder: torch.nn.Module, head: torch.nn.Linear, inputs: dict[str, Any], labels: torch.Tensor,
    num_items_in_batch: torch.Tensor | int, weighting: TokenLoss | None = None,
) -> torch.Tensor:
    """`weighting`: a token-weighted loss (DFT, EAFT) instead of plain cross-entropy."""
    model_inputs = {key: value for key, value in inputs.items() if key != "use_cache"}
    hidden = decoder(**model_inputs, use_cache=False).last_hidden_state
    hidden, targets = _supervised_rows(hidden, labels)
    if weighting is None and torch.is_grad_enabled():  # the head's gradients computed with its loss, no recomputation
        return head_cross_entropy(hidden, targets, head, _rows_per_chunk(head), summed=True) / num_items_in_batch
    return _recomputed_chunks_loss(hidden, targets, head, weighting) / num_items_in_batch
