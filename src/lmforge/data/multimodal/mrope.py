"""3-D rotary position ids (M-RoPE) of Qwen2-VL-style models, computed per example on the data side.

Packed rows need them per packed example (restarting at 0), which the model cannot infer from a
packed row. Text tokens advance all three axes together; a vision item's tokens take (time,
height, width) grid coordinates offset by the current position, after which text continues at
the current position plus the item's largest spatial extent (Qwen2-VL's rule, kept identical:
tests compare with the model's own `get_rope_index`).
"""

import itertools
from typing import Any


def mrope_position_ids(token_types: list[int], grids: dict[int, list[tuple[Any, float]]],
                       spatial_merge_size: int) -> Any:
    """(3, length) ids. `token_types`: 0 text, 1 image, 2 video per token; `grids`: type -> one
    ((t, h, w), time interval) per item, in order (the interval spaces a video's temporal positions)."""
    import torch

    pending = {kind: iter(items) for kind, items in grids.items()}
    parts, current = [], 0
    for kind, group in itertools.groupby(token_types):
        length = len(list(group))
        if kind == 0:
            parts.append(torch.arange(current, current + length).expand(3, -1))
            current += length
            continue
        grid, interval = next(pending[kind])
        t, h, w = (int(x) for x in grid)
        h, w = h // spatial_merge_size, w // spatial_merge_size
        temporal = (torch.arange(t) * interval).long()
        ids = torch.stack(torch.meshgrid(temporal, torch.arange(h), torch.arange(w), indexing="ij")).reshape(3, -1)
        if ids.shape[1] != length:
            raise ValueError(f"a vision item of grid {t}x{h}x{w} has {ids.shape[1]} positions but {length} tokens")
        parts.append(ids + current)
        current += max(h, w)
    return torch.cat(parts, dim=1) if parts else torch.zeros(3, 0, dtype=torch.long)
