"""Log-probabilities of answers under the model, from one teacher-forced forward pass.

Every candidate method reports the same quantity this way: the log-probability the model (at
temperature 1, no sampling filters) gives each answer token after the prompt.
"""

from collections.abc import Callable
from typing import Any

import torch

Alternatives = tuple[tuple[int, float], ...]  # the most likely tokens at one position, with log-probabilities


@torch.inference_mode()
def answer_logprobs(model: torch.nn.Module, prompt_ids: list[int], answers: list[list[int]], pad_token_id: int,
                    extra_inputs: Callable[[torch.Tensor], dict[str, Any]] | None = None,
                    top: int = 0) -> tuple[list[list[float]], list[list[Alternatives]]]:
    """Per-token log-probabilities of each answer (a list of token ids) following `prompt_ids`; with `top`,
    and the `top` most likely tokens at each answer position (empty lists without `top`).
    `extra_inputs`: further model inputs for the batch's input ids (a vision-language prompt's images)."""
    scored = [answer for answer in answers if answer]
    if not scored:
        return [[] for _ in answers], [[] for _ in answers]
    device = next(model.parameters()).device
    rows = [prompt_ids + answer for answer in scored]
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long, device=device)
    attention = torch.zeros_like(input_ids)
    for i, row in enumerate(rows):  # right padding: positions stay 0..len-1 without position ids
        input_ids[i, :len(row)] = torch.tensor(row, device=device)
        attention[i, :len(row)] = 1
    extra = extra_inputs(input_ids) if extra_inputs is not None else {}
    logits = model(input_ids=input_ids, attention_mask=attention, **extra).logits.float()
    log_probs = torch.log_softmax(logits[:, len(prompt_ids) - 1:-1], dim=-1)
    out_iter = iter(range(len(rows)))
    result: list[list[float]] = []
    alternatives: list[list[Alternatives]] = []
    for answer in answers:
        if not answer:
            result.append([])
            alternatives.append([])
            continue
        i = next(out_iter)
        targets = torch.tensor(answer, device=device)
        result.append(log_probs[i, :len(answer)].gather(-1, targets[:, None])[:, 0].tolist())
        alternatives.append([])
        if top:
            values, ids = log_probs[i, :len(answer)].topk(top, dim=-1)
            alternatives[-1] = [tuple(zip(row_ids, row_values, strict=True))
                                 for row_ids, row_values in zip(ids.tolist(), values.tolist(), strict=True)]
    return result, alternatives
