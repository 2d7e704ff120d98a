"""Bin-packing of tokenized examples into rows of at most `cutoff_len` tokens.

Packed rows keep each example whole and restart `position_ids` at every example. Passed with
`position_ids` and no 2-D attention mask, transformers builds a block-diagonal causal mask from
them (eager/SDPA) or runs variable-length flash attention, so no example attends to another and
each keeps its own positions: packing changes speed, not what is learned.
"""

import bisect
from dataclasses import dataclass
from typing import Literal

Strategy = Literal["ffd", "bfd"]


def pack_lengths(lengths: list[int], capacity: int, strategy: Strategy = "bfd") -> list[list[int]]:
    """Indices of `lengths` grouped into bins of total length <= capacity, longest items first.

    First-fit decreasing puts each item in the first bin with room; best-fit decreasing in the
    fullest bin with room (a sorted list of free spaces makes that O(log bins) per item).
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    if strategy == "ffd":
        free: list[int] = []
        for index in order:
            size = lengths[index]
            target = next((b for b, room in enumerate(free) if room >= size), None)
            if target is None:
                bins.append([index])
                free.append(capacity - size)
            else:
                bins[target].append(index)
                free[target] -= size
        return bins
    spaces: list[tuple[int, int]] = []  # (free space, bin index), sorted ascending
    for index in order:
        size = lengths[index]
        slot = bisect.bisect_left(spaces, (size, -1))
        if slot == len(spaces):
            bins.append([index])
            bisect.insort(spaces, (capacity - size, len(bins) - 1))
        else:
            room, target = spaces.pop(slot)
            bins[target].append(index)
            bisect.insort(spaces, (room - size, target))
    return bins


@dataclass
class PackingReport:
    examples: int
    rows: int
    tokens: int
    capacity: int

    @property
    def efficiency(self) -> float:
        """Share of the packed rows' slots filled with real tokens (non-pad / total)."""
        return self.tokens / max(self.rows * self.capacity, 1)


def pack_examples(
    columns: dict[str, list[list[int]]], capacity: int, strategy: Strategy = "bfd"
) -> tuple[dict[str, list[list[int]]], PackingReport]:
    """Concatenate examples bin by bin; adds `position_ids` restarting at 0 for every example."""
    lengths = [len(ids) for ids in columns["input_ids"]]
    if lengths and max(lengths) > capacity:
        raise ValueError(f"an example of {max(lengths)} tokens exceeds the packing capacity {capacity}")
    packed: dict[str, list[list[int]]] = {"input_ids": [], "labels": [], "position_ids": []}
    for members in pack_lengths(lengths, capacity, strategy):
        members.sort()  # keep the dataset's order inside a row
        row = {key: [] for key in packed}
        for index in members:
            row["input_ids"] += columns["input_ids"][index]
            row["labels"] += columns["labels"][index]
            row["position_ids"] += list(range(lengths[index]))
        for key in packed:
            packed[key].append(row[key])
    report = PackingReport(len(lengths), len(packed["input_ids"]), sum(lengths), capacity)
    return packed, report
