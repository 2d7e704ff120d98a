"""Batches with dynamic padding: inputs padded with the pad token, labels with -100."""

from dataclasses import dataclass
from typing import Any

import torch

from lmforge.data.processors.sft import IGNORE_INDEX


@dataclass
class SftCollator:
    pad_token_id: int
    pad_to_multiple_of: int | None = 8

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = {
            "input_ids": torch.full((len(features), longest), self.pad_token_id, dtype=torch.long),
            "attention_mask": torch.zeros((len(features), longest), dtype=torch.long),
            "labels": torch.full((len(features), longest), IGNORE_INDEX, dtype=torch.long),
        }
        for row, feature in enumerate(features):
            length = len(feature["input_ids"])
            batch["input_ids"][row, :length] = torch.as_tensor(feature["input_ids"])
            batch["attention_mask"][row, :length] = 1
            batch["labels"][row, :length] = torch.as_tensor(feature["labels"])
        return batch


@dataclass
class Seq2SeqCollator:
    """Encoder inputs and decoder labels padded separately (they have different lengths)."""

    pad_token_id: int
    pad_to_multiple_of: int | None = 8

    def _width(self, rows: list[list[int]]) -> int:
        longest = max(len(row) for row in rows)
        if self.pad_to_multiple_of:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        return longest

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        inputs = [f["input_ids"] for f in features]
        labels = [f["labels"] for f in features]
        input_width, label_width = self._width(inputs), self._width(labels)
        batch = {
            "input_ids": torch.full((len(features), input_width), self.pad_token_id, dtype=torch.long),
            "attention_mask": torch.zeros((len(features), input_width), dtype=torch.long),
            "labels": torch.full((len(features), label_width), IGNORE_INDEX, dtype=torch.long),
        }
        for row, (source, target) in enumerate(zip(inputs, labels, strict=True)):
            batch["input_ids"][row, : len(source)] = torch.as_tensor(source)
            batch["attention_mask"][row, : len(source)] = 1
            batch["labels"][row, : len(target)] = torch.as_tensor(target)
        return batch
