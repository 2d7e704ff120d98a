"""New tokens (`add_tokens`, `add_special_tokens`): added to the tokenizer, embeddings resized to match, and the
new tokens' rows initialised (`init_special_tokens`).

noise_init (the default): rows the resize adds are drawn around the mean of the existing rows (transformers'
`mean_resizing`, with far less noise than LLaMA-Factory adds), so a new token starts as a plausible "average"
token rather than noise that dominates the logits. A checkpoint whose embeddings have more rows than its
tokenizer has tokens (Qwen pads to a multiple of 64 or more) needs no resize: its new tokens take rows that were
never trained, and those are set to the mean too.

desc_init: each described special token starts at the mean of the rows of its description's tokens (the input
embeddings, and the output head's own rows where it is not tied to them); desc_init_w_noise adds Gaussian noise
of std 1/sqrt(hidden size), drawn from the run's seed.
"""

import logging
import math
from contextlib import AbstractContextManager, nullcontext
from typing import Any
from weakref import WeakKeyDictionary

import torch
from transformers import PreTrainedTokenizerBase

from lmforge.config.groups import ModelGroup
from lmforge.errors import ModelError

logger = logging.getLogger(__name__)

# each tokenizer `add_new_tokens` grew: the id of its first new token (the ones after it are new too)
_FIRST_NEW_ID: "WeakKeyDictionary[PreTrainedTokenizerBase, int]" = WeakKeyDictionary()


def add_new_tokens(tokenizer: PreTrainedTokenizerBase, args: ModelGroup) -> int:
    """Add the configured tokens the tokenizer does not have yet; returns how many were added."""
    before = len(tokenizer)
    added = 0
    if args.add_tokens:
        added += tokenizer.add_tokens(args.add_tokens)
    if args.add_special_tokens:
        added += tokenizer.add_special_tokens(
            {"additional_special_tokens": args.add_special_tokens}, replace_extra_special_tokens=False)
    if added:
        _FIRST_NEW_ID[tokenizer] = before
        logger.info("added %d new tokens to the tokenizer (now %d)", added, len(tokenizer))
    return added


def resize_for_new_tokens(model: Any, tokenizer: PreTrainedTokenizerBase, args: ModelGroup, seed: int = 42) -> None:
    """Grow the embeddings when the tokenizer gained configured tokens, or outgrows them with `resize_vocab`
    (never shrink them), and initialise the new tokens' rows as `args.init_special_tokens` says."""
    if not (args.add_tokens or args.add_special_tokens or args.resize_vocab):
        return
    with _whole(model.get_input_embeddings().weight, modified=False):
        rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > rows:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
        logger.info("resized the embeddings from %d to %d rows for the new tokens", rows, len(tokenizer))
    first_new = _FIRST_NEW_ID.get(tokenizer, len(tokenizer))
    untrained = range(first_new, min(len(tokenizer), rows))  # new tokens in rows the checkpoint already had
    described = _described_ids(tokenizer, args, first_new) if args.init_special_tokens != "noise_init" else {}
    if not untrained and not described:
        return
    generator = torch.Generator().manual_seed(seed)
    noisy = args.init_special_tokens == "desc_init_w_noise"
    for weight in _embedding_matrices(model):
        with _whole(weight, modified=True), torch.no_grad():
            mean = weight[:first_new].float().mean(dim=0)
            for row in untrained:
                weight[row] = mean.to(weight.dtype)
            for row, source_ids in described.items():
                start = weight[source_ids].float().mean(dim=0)
                if noisy:
                    start += torch.randn(start.shape, generator=generator) / math.sqrt(start.numel())
                weight[row] = start.to(weight.dtype)
    if described:
        logger.info("initialised %d new special tokens from their descriptions (%s)", len(described),
                    args.init_special_tokens)


def _described_ids(tokenizer: PreTrainedTokenizerBase, args: ModelGroup, first_new: int) -> dict[int, list[int]]:
    """Each new described special token's id -> the ids of its description's tokens (known tokens only)."""
    described = {}
    for token, description in (args.special_token_descriptions or {}).items():
        row = tokenizer.convert_tokens_to_ids(token)
        if row < first_new:  # the checkpoint's own token: its trained row stays
            continue
        source_ids = [i for i in tokenizer(description, add_special_tokens=False)["input_ids"] if i < first_new]
        if not source_ids:
            raise ModelError(f"the description of `{token}` ({description!r}) is made only of new tokens: "
                             "describe it in words the model already knows")
        described[row] = source_ids
    return described


def _embedding_matrices(model: Any) -> list[torch.Tensor]:
    """The input embeddings' weight, and the output head's where it is a separate matrix."""
    matrices = [model.get_input_embeddings().weight]
    head = model.get_output_embeddings()
    if head is not None and head.weight is not matrices[0]:
        matrices.append(head.weight)
    return matrices


def _whole(weight: torch.Tensor, modified: bool) -> AbstractContextManager:
    """The whole matrix while inside, where DeepSpeed ZeRO-3 partitioned it at load (its public
    `GatheredParameters`; `modified`: the first rank's changes are kept on every rank)."""
    from transformers.integrations import is_deepspeed_zero3_enabled

    if not is_deepspeed_zero3_enabled():
        return nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters([weight], modifier_rank=0 if modified else None)
