"""lmforge's chunked log-probabilities behind trl's fused-LM-head call, for the DPO and KTO trainers.

trl 1.16's DPOTrainer and KTOTrainer score the policy and the reference through `trl.trainer.utils.
add_fused_lm_head`, which gives the model instance a forward that answers `model(..., labels=labels,
fused_lm_head=True)` with a `FusedCausalLMOutput` (per-token log-probabilities and the metrics' entropy, mean
logit, top-1 flag) instead of logits. Its CPU path (no Triton) scores every position, prompt and padding
included, in 4,096-token x 32,768-vocabulary tiles, and each tile's fp32 temporaries (upcast, scaled logits,
exponentials, masks; and as many again in backward) reach several GB for one 2 x 2,048-token pair.

`use_chunked_head` answers the same call on the same instances (the policy's base model and the reference
model trl patched: nothing process-wide) from lmforge's chunks (`loss.chunked_token_outputs`): the hidden
states of the supervised positions only, the head and log-softmax a few hundred rows at a time, so a chunk's
logits exist only while it is computed: a frozen head (LoRA) with its gradient computed in the forward pass
(train/head_gradient.py), a trained one and the reference pass under activation checkpointing. Only
architectures whose logits are a plain `head(decoder(...))` (`loss.plain_head_parts`) are switched, and not
under DeepSpeed or FSDP, which gather the head's weight inside trl's own forward.
"""

import contextlib
import types
from collections.abc import Callable
from typing import Any

import torch

from lmforge.train.loss import chunked_token_outputs, plain_head_parts


def _install(model: Any, autocast: Callable[[], contextlib.AbstractContextManager]) -> bool:
    from trl.trainer.utils import FusedCausalLMOutput  # trl loads when a stage trains

    parts = plain_head_parts(model)
    if parts is None:
        return False
    decoder, head = parts
    previous = model.forward  # trl's: it answers the calls without `fused_lm_head`, and `shift_labels` ones

    def forward(self: Any, *args: Any, fused_lm_head: bool = False, labels: torch.Tensor | None = None,
                num_items_in_batch: Any = None, **kwargs: Any) -> Any:
        if not fused_lm_head or args or "shift_labels" in kwargs or kwargs.get("output_router_logits"):
            return previous(*args, fused_lm_head=fused_lm_head, labels=labels,
                            num_items_in_batch=num_items_in_batch, **kwargs)
        kwargs["use_cache"] = False
        # the trainer's mixed precision: accelerate put it around the forward this one replaces (the reference
        # model's, prepared when trl built the trainer), and a reference scored in float32 would disagree with its
        # bf16-autocast policy from step 0 (DPO's first loss was not ln 2) and take twice the time on a CPU
        with autocast():
            log_probs, entropy, log_sum_sq_probs, mean_logits, is_top1 = chunked_token_outputs(
                decoder, head, kwargs, labels)
        mask = labels[:, 1:] != -100
        count = mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
        return FusedCausalLMOutput(loss=-log_probs.sum() / count, log_probs=log_probs, entropy=entropy,
                                   log_sum_sq_probs=log_sum_sq_probs, mean_logits=mean_logits, is_top1=is_top1,
                                   label_mask=mask)

    model.forward = types.MethodType(forward, model)
    return True


def use_chunked_head(trainer: Any) -> bool:
    """Switch a trl DPOTrainer/KTOTrainer's policy (and its reference model, if it has one) to lmforge's chunked
    log-probabilities; False (trl's head kept) where the model's head is not plain or the engine shards it."""
    if trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled:
        return False
    model = trainer.model
    autocast = trainer.accelerator.autocast
    switched = _install(model.get_base_model() if hasattr(model, "get_base_model") else model, autocast)
    if switched and trainer.ref_model is not None:
        _install(trainer.accelerator.unwrap_model(trainer.ref_model), autocast)
    return switched
