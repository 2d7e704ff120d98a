"""The transformers Trainer, counting the tokens it trains on so throughput is measured, not guessed."""

from dataclasses import dataclass
from typing import Any

from transformers import Trainer

from lmforge.data.processors.sft import IGNORE_INDEX


@dataclass
class TokenCounts:
    input_tokens: int = 0  # every position computed, padding included
    non_pad_tokens: int = 0
    supervised_tokens: int = 0  # positions whose label enters the loss
    samples: int = 0


class LmforgeTrainer(Trainer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.token_counts = TokenCounts()
        self.encoder_decoder = bool(getattr(getattr(self.model, "config", None), "is_encoder_decoder", False))

    def compute_loss(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if model.training:
            counts = self.token_counts
            counts.input_tokens += inputs["input_ids"].numel()
            counts.samples += inputs["input_ids"].shape[0]
            if "attention_mask" in inputs:
                counts.non_pad_tokens += int(inputs["attention_mask"].sum())
            if "labels" in inputs and self.encoder_decoder:  # decoder positions: every label is predicted
                supervised = int((inputs["labels"] != IGNORE_INDEX).sum())
                counts.input_tokens += inputs["labels"].numel()
                counts.non_pad_tokens += supervised
                counts.supervised_tokens += supervised
            elif "labels" in inputs:  # the first label of a row is never predicted (causal shift)
                counts.supervised_tokens += int((inputs["labels"][:, 1:] != IGNORE_INDEX).sum())
        return super().compute_loss(model, inputs, *args, **kwargs)
