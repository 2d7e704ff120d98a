"""Batches with dynamic padding: inputs padded with the pad token, labels with -100 (or the pad token).

Packed rows (with `position_ids`) get no attention mask on purpose: transformers then derives
the block-diagonal mask from the restarting positions (see `lmforge.data.packing`). Their
padding sits at the end, where no real token can attend to it. Having no mask, they carry
`num_real_tokens`, `num_examples` and `num_attention_pairs` (popped by `LmforgeTrainer` before the forward
pass) so throughput and FLOP counts stay exact.

`padding_free` puts a batch's rows one after another in a single row the same way (positions restarting
at each example, padded at the end to a multiple of `PADDING_FREE_MULTIPLE` tokens): attention that keeps
packed sequences apart computes what the padded batch computed, without the padding. Each row's first
label is left out of the loss, as a padded row's first label is (nothing before it predicts it); the rest
is the same loss.
"""

from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

import torch

from lmforge.data.labels import IGNORE_INDEX


def attention_pairs(position_ids: list[int]) -> int:
    """Sum of length^2 over the sequences of one packed row (each restarts its positions at 0): the
    (query, key) pairs its attention computes, which set its attention FLOPs."""
    starts = [index for index, position in enumerate(position_ids) if position == 0] + [len(position_ids)]
    return sum((end - start) ** 2 for start, end in pairwise(starts))


# oneDNN's AMX matmuls split rows of such lengths evenly between the cores (docs/models.md, "Padding-free batches")
PADDING_FREE_MULTIPLE = 32


def one_row(features: list[dict[str, Any]]) -> dict[str, list[int]]:
    """The rows of a batch one after another (`padding_free`): positions restart at each example (packed rows
    keep theirs) and each row's first label is ignored, as the causal shift of a row of its own ignores it."""
    row: dict[str, list[int]] = {"input_ids": [], "position_ids": []}
    if "labels" in features[0]:
        row["labels"] = []
    for feature in features:
        row["input_ids"] += feature["input_ids"]
        row["position_ids"] += feature.get("position_ids") or range(len(feature["input_ids"]))
        if "labels" in row:
            row["labels"] += [IGNORE_INDEX, *feature["labels"][1:]]
    return row


@dataclass
class SftCollator:
    pad_token_id: int
    pad_to_multiple_of: int | None = 8
    padding_side: Literal["right", "left"] = "right"  # left for generation
    label_pad_token_id: int = IGNORE_INDEX  # the pad token id supervises padding (`ignore_pad_token_for_loss: false`)
    padding_free: bool = False  # the batch as one row (see above); right padding only

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        multiple = self.pad_to_multiple_of
        if self.padding_free:
            features = [one_row(features)]
            multiple = PADDING_FREE_MULTIPLE
        longest = max(len(f["input_ids"]) for f in features)
        if multiple:
            longest = -(-longest // multiple) * multiple
        packed = "position_ids" in features[0]
        size = (len(features), longest)
        batch = {"input_ids": torch.full(size, self.pad_token_id, dtype=torch.long)}
        if "labels" in features[0]:
            batch["labels"] = torch.full(size, self.label_pad_token_id, dtype=torch.long)
        if packed:
            batch["position_ids"] = torch.zeros(size, dtype=torch.long)
        else:
            batch["attention_mask"] = torch.zeros(size, dtype=torch.long)
        if packed:
            batch["num_real_tokens"] = torch.tensor(sum(len(f["input_ids"]) for f in features))
            batch["num_examples"] = torch.tensor(sum(f["position_ids"].count(0) for f in features))
            batch["num_attention_pairs"] = torch.tensor(sum(attention_pairs(f["position_ids"]) for f in features))
        for row, feature in enumerate(features):
            length = len(feature["input_ids"])
            span = slice(longest - length, longest) if self.padding_side == "left" else slice(0, length)
            batch["input_ids"][row, span] = torch.as_tensor(feature["input_ids"])
            if "labels" in batch:
                batch["labels"][row, span] = torch.as_tensor(feature["labels"])
            if packed:
                batch["position_ids"][row, span] = torch.as_tensor(feature["position_ids"])
                # the padding tail is one more sequence, not one per token (see model.packed_attention)
                pad = slice(0, longest - length) if self.padding_side == "left" else slice(length, longest)
                batch["position_ids"][row, pad] = torch.arange(longest - length)
            else:
                batch["attention_mask"][row, span] = 1
        return batch


@dataclass
class Seq2SeqCollator:
    """Encoder inputs and decoder labels padded separately (they have different lengths)."""

    pad_token_id: int
    pad_to_multiple_of: int | None = 8
    label_pad_token_id: int = IGNORE_INDEX  # as SftCollator's

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
            "labels": torch.full((len(features), label_width), self.label_pad_token_id, dtype=torch.long),
        }
        for row, (source, target) in enumerate(zip(inputs, labels, strict=True)):
            batch["input_ids"][row, : len(source)] = torch.as_tensor(source)
            batch["attention_mask"][row, : len(source)] = 1
            batch["labels"][row, : len(target)] = torch.as_tensor(target)
        return batch
