"""New tokens (`add_tokens`, `add_special_tokens`): added to the tokenizer, embeddings resized to match.

New embedding rows are drawn from a normal distribution with the mean and covariance of the existing
rows (transformers' `mean_resizing`), so a new token starts as a plausible "average" token rather than
noise that dominates the logits.
"""

import logging
from typing import Any

from transformers import PreTrainedTokenizerBase

from lmforge.config.groups import ModelGroup

logger = logging.getLogger(__name__)


def add_new_tokens(tokenizer: PreTrainedTokenizerBase, args: ModelGroup) -> int:
    """Add the configured tokens the tokenizer does not have yet; returns how many were added."""
    added = 0
    if args.add_tokens:
        added += tokenizer.add_tokens(args.add_tokens)
    if args.add_special_tokens:
        added += tokenizer.add_special_tokens(
            {"additional_special_tokens": args.add_special_tokens}, replace_extra_special_tokens=False)
    if added:
        logger.info("added %d new tokens to the tokenizer (now %d)", added, len(tokenizer))
    return added


def resize_for_new_tokens(model: Any, tokenizer: PreTrainedTokenizerBase, args: ModelGroup) -> None:
    """Grow the embeddings when the tokenizer gained configured tokens, or outgrows them with `resize_vocab`;
    never shrink them."""
    if not (args.add_tokens or args.add_special_tokens or args.resize_vocab):
        return
    rows = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) <= rows:
        return
    model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    logger.info("resized the embeddings from %d to %d rows for the new tokens", rows, len(tokenizer))
