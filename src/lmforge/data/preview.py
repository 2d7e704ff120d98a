"""Show an example as the model sees it: supervised tokens highlighted, the rest dimmed."""

from typing import Any

from rich.text import Text
from transformers import PreTrainedTokenizerBase

from lmforge.data.processors.sft import IGNORE_INDEX

MAX_PREVIEW_TOKENS = 400


def highlight_example(example: dict[str, Any], tokenizer: PreTrainedTokenizerBase,
                      max_tokens: int = MAX_PREVIEW_TOKENS) -> Text:
    """Prompt text dim, supervised text bold green; a packed row shows its examples in turn."""
    ids, labels = example["input_ids"][:max_tokens], example["labels"][:max_tokens]
    text = Text()
    start = 0
    for index in range(1, len(ids) + 1):
        if index == len(ids) or (labels[index] != IGNORE_INDEX) != (labels[start] != IGNORE_INDEX):
            supervised = labels[start] != IGNORE_INDEX
            text.append(tokenizer.decode(ids[start:index]), style="bold green" if supervised else "dim")
            start = index
    if len(example["input_ids"]) > max_tokens:
        text.append(f" ... ({len(example['input_ids']) - max_tokens} more tokens)", style="italic")
    return text
