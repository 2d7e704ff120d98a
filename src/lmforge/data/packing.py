"""Bin-packing of tokenized examples into rows of at most `cutoff_len` tokens.

Packed rows keep each example whole and restart `position_ids` at every example. Passed with
`position_ids` and no 2-D attention mask, transformers builds a block-diagonal causal mask from
them (eager/SDPA) or runs variable-length flash attention, so no example attends to another and
each keeps its own positions: packing changes speed, not what is learned.
"""

import bisect
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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


def pack_table(table: pa.Table, capacity: int, strategy: Strategy = "bfd") -> tuple[pa.Table, PackingReport]:
    """`input_ids` and `labels` list columns packed bin by bin, in Arrow (no token goes through a Python
    list); adds `position_ids` restarting at 0 for every example."""
    lengths = pc.list_value_length(table.column("input_ids")).to_numpy(zero_copy_only=False).astype(np.int64)
    if len(lengths) and lengths.max() > capacity:
        raise ValueError(f"an example of {lengths.max()} tokens exceeds the packing capacity {capacity}")
    bins = [sorted(members) for members in pack_lengths(lengths.tolist(), capacity, strategy)]  # dataset order
    order = np.fromiter((index for members in bins for index in members), dtype=np.int64, count=len(lengths))
    ordered = lengths[order]
    row_ends = np.cumsum([lengths[members].sum() for members in bins], dtype=np.int64)
    offsets = pa.array(np.concatenate([[0], row_ends]).astype(np.int32))
    packed = {name: pa.ListArray.from_arrays(offsets, table.column(name).take(order).combine_chunks().flatten())
              for name in ("input_ids", "labels")}
    starts = np.repeat(np.cumsum(ordered) - ordered, ordered)  # each token's example start
    positions = (np.arange(int(ordered.sum()), dtype=np.int64) - starts).astype(np.int32)
    packed["position_ids"] = pa.ListArray.from_arrays(offsets, pa.array(positions))
    report = PackingReport(len(lengths), len(bins), int(lengths.sum()), capacity)
    return pa.table(packed), report


def pack_examples(
    columns: dict[str, list[list[int]]], capacity: int, strategy: Strategy = "bfd"
) -> tuple[dict[str, list[list[int]]], PackingReport]:
    """`pack_table` on Python columns."""
    token_lists = pa.list_(pa.int32())
    table = pa.table({name: pa.array(columns[name], type=token_lists) for name in ("input_ids", "labels")})
    packed, report = pack_table(table, capacity, strategy)
    return packed.to_pydict(), report
