"""Diverse (group) beam search: Vijayakumar et al., "Diverse Beam Search" (2016), Hamming diversity.

transformers 5 moved group beam search to a hub repository (`custom_generate`), so it is written
here. The beams are split into groups that advance one after another at every step; a group's
log-probabilities lose `diversity_penalty` for each time an earlier group chose the same token at
this step. Within a group, each step follows transformers' own beam search (top 2 x beams
continuations, finished hypotheses scored by length ** length_penalty, the same early-stopping
heuristic), so one group returns exactly transformers' beams (tested).
"""

from dataclasses import dataclass

import torch
from transformers import DynamicCache, LogitsProcessorList, StoppingCriteriaList
from transformers.generation.stopping_criteria import EosTokenCriteria, MaxLengthCriteria

NEG = -1.0e9


@dataclass
class Beam:
    token_ids: list[int]  # generated tokens, prompt excluded, the closing eos included
    score: float  # log-probability (diversity penalty included) / length ** length_penalty
    group: int


@dataclass
class _Group:
    """One group's running beams and finished hypotheses (batch dimension 1, as transformers keeps it)."""

    running: torch.Tensor  # (1, b, max_length) token ids
    running_scores: torch.Tensor  # (1, b)
    finished: torch.Tensor  # (1, b, max_length)
    finished_scores: torch.Tensor  # (1, b)
    finished_lengths: torch.Tensor  # (1, b) generated length of each finished hypothesis
    is_finished: torch.Tensor  # (1, b) bool
    improvable: torch.Tensor  # (1, 1) bool: can a running beam still beat a finished one?
    active: bool = True


def _gather(tensor: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    while indices.dim() < tensor.dim():
        indices = indices.unsqueeze(-1)
    return torch.take_along_dim(tensor, indices, dim=1)


@torch.inference_mode()
def diverse_beam_search(
    model: torch.nn.Module,
    prompt_ids: list[int],
    *,
    num_beams: int,
    num_beam_groups: int,
    diversity_penalty: float,
    max_new_tokens: int,
    eos_token_ids: list[int],
    pad_token_id: int,
    length_penalty: float = 1.0,
    early_stopping: bool | str = False,
    logits_processor: LogitsProcessorList | None = None,
    stopping_criteria: StoppingCriteriaList | None = None,
) -> list[list[Beam]]:
    """The finished beams of each group, best first. `stopping_criteria` adds to eos and max length."""
    if num_beams % num_beam_groups:
        raise ValueError(f"num_beams ({num_beams}) must be a multiple of num_beam_groups ({num_beam_groups})")
    device = next(model.parameters()).device
    size = num_beams // num_beam_groups
    prompt_len = len(prompt_ids)
    max_length = prompt_len + max_new_tokens
    criteria = StoppingCriteriaList([MaxLengthCriteria(max_length), EosTokenCriteria(eos_token_ids)])
    criteria.extend(stopping_criteria or [])
    processors = logits_processor or LogitsProcessorList()
    keep = max(2, 1 + len(eos_token_ids)) * size  # transformers' number of continuations kept per step
    top_mask = torch.arange(keep, device=device) < size

    prompt = torch.tensor(prompt_ids, device=device)
    groups: list[_Group] = []
    for _ in range(num_beam_groups):
        running = torch.full((1, size, max_length), pad_token_id, dtype=torch.long, device=device)
        running[:, :, :prompt_len] = prompt
        scores = torch.zeros((1, size), device=device)
        scores[:, 1:] = NEG  # only the first beam may start, or all beams would pick the same tokens
        groups.append(_Group(running, scores, running.clone(), torch.full((1, size), NEG, device=device),
                             torch.zeros((1, size), dtype=torch.long, device=device),
                             torch.zeros((1, size), dtype=torch.bool, device=device),
                             torch.ones((1, 1), dtype=torch.bool, device=device)))

    cache = DynamicCache(config=model.config)
    inputs = prompt.repeat(num_beams, 1)
    outputs = model(input_ids=inputs, attention_mask=torch.ones_like(inputs), past_key_values=cache,
                    use_cache=True, logits_to_keep=1)
    cur_len = prompt_len
    while any(group.active for group in groups):
        logits = outputs.logits[:, -1, :].to(copy=True, dtype=torch.float32)
        flat = torch.cat([group.running[0, :, :cur_len] for group in groups])
        log_probs = processors(flat, torch.nn.functional.log_softmax(logits, dim=-1))
        vocab = log_probs.shape[-1]
        chosen_now = torch.zeros(vocab, device=device)  # how often earlier groups picked each token this step
        reorder = []
        for index, group in enumerate(groups):
            offset = index * size
            if not group.active:
                reorder.append(torch.arange(offset, offset + size, device=device))
                continue
            group_log_probs = log_probs[offset:offset + size] - diversity_penalty * chosen_now
            source = _step(group, group_log_probs, criteria, cur_len, prompt_len, max_length, keep, top_mask,
                           length_penalty, early_stopping, vocab)
            reorder.append(source + offset)
            chosen_now += torch.bincount(group.running[0, :, cur_len], minlength=vocab).to(chosen_now.dtype)
        cache.reorder_cache(torch.cat(reorder))
        cur_len += 1
        if not any(group.active for group in groups):
            break
        next_tokens = torch.cat([group.running[0, :, cur_len - 1:cur_len] for group in groups])
        outputs = model(input_ids=next_tokens, attention_mask=torch.ones((num_beams, cur_len), device=device,
                                                                         dtype=torch.long),
                        past_key_values=cache, use_cache=True)
    return [_finished_beams(group, index, prompt_len) for index, group in enumerate(groups)]


def _step(group: _Group, log_probs: torch.Tensor, criteria: StoppingCriteriaList, cur_len: int, prompt_len: int,
          max_length: int, keep: int, top_mask: torch.Tensor, length_penalty: float,
          early_stopping: bool | str, vocab: int) -> torch.Tensor:
    """Advance one group by one token; returns, per new running beam, the beam it extends."""
    size = group.running.shape[1]
    accumulated = (log_probs[None] + group.running_scores[:, :, None]).reshape(1, -1)
    top_scores, top_indices = torch.topk(accumulated, k=keep)
    top_beams = top_indices // vocab
    top_sequences = _gather(group.running, top_beams)
    top_sequences[:, :, cur_len] = top_indices % vocab
    hits = criteria(top_sequences[0, :, :cur_len + 1], None)[None]

    # the best `size` continuations that did not stop keep running
    running_scores = top_scores + hits.to(torch.float32) * NEG
    selected = torch.topk(running_scores, k=size)[1]
    group.running = _gather(top_sequences, selected)
    group.running_scores = _gather(running_scores, selected)
    source = _gather(top_beams, selected)[0]

    # continuations that stopped among the top `size` join the finished hypotheses if they beat them
    just_finished = hits & top_mask[None, :]
    length = cur_len + 1 - prompt_len
    finished_scores = top_scores / (length ** length_penalty)
    all_full = torch.all(group.is_finished, dim=-1, keepdim=True) & (early_stopping is True)
    finished_scores = finished_scores + all_full.to(torch.float32) * NEG
    finished_scores = finished_scores + (~group.improvable).to(torch.float32) * NEG
    finished_scores = finished_scores + (~just_finished) * NEG
    merged_scores = torch.cat((group.finished_scores, finished_scores), dim=1)
    best = torch.topk(merged_scores, k=size)[1]
    group.finished = _gather(torch.cat((group.finished, top_sequences), dim=1), best)
    group.finished_scores = _gather(merged_scores, best)
    lengths = torch.full_like(top_scores, length, dtype=torch.long)
    group.finished_lengths = _gather(torch.cat((group.finished_lengths, lengths), dim=1), best)
    group.is_finished = _gather(torch.cat((group.is_finished, just_finished), dim=1), best)

    # transformers' early-stopping heuristic and stop condition, per group
    next_len = cur_len + 1
    never = early_stopping == "never" and length_penalty > 0
    hypothetical = max_length - prompt_len if never else next_len - prompt_len
    best_running = group.running_scores[:, :1] / (hypothetical ** length_penalty)
    worst_finished = torch.where(group.is_finished, torch.min(group.finished_scores, dim=1, keepdim=True)[0], NEG)
    group.improvable = group.improvable & torch.any(best_running > worst_finished, dim=-1, keepdim=True)
    open_beams = not (bool(torch.all(group.is_finished)) and early_stopping is True)
    group.active = bool(group.improvable.any()) and open_beams and not bool(torch.all(hits))
    return source


def _finished_beams(group: _Group, index: int, prompt_len: int) -> list[Beam]:
    beams = []
    for slot in range(group.finished.shape[1]):
        score = float(group.finished_scores[0, slot])
        if score <= NEG / 2:
            continue
        length = int(group.finished_lengths[0, slot])
        tokens = group.finished[0, slot, prompt_len:prompt_len + length].tolist()
        beams.append(Beam(tokens, score, index))
    return beams
