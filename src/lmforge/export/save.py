"""Write a model's weights: sharded safetensors (always), or legacy `.bin` shards on request.

transformers 5's `save_pretrained` writes safetensors only, so `.bin` files are written here with
`torch.save`, one state-dict shard per file plus `pytorch_model.bin.index.json` when sharded, the
layout `from_pretrained` reads. Tied weights are stored once (transformers re-ties them on load).
"""

import json
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import split_torch_state_dict_into_shards

from lmforge.paths import share_weight_files

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def untied_state_dict(model: Any) -> dict[str, torch.Tensor]:
    """The state dict with each shared tensor kept once (the first name wins, as transformers does)."""
    seen: set[tuple[int, tuple[int, ...]]] = set()
    state: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict().items():
        key = (tensor.untyped_storage().data_ptr(), tuple(tensor.shape))
        if key in seen:
            continue
        seen.add(key)
        state[name] = tensor.detach().contiguous().cpu()
    return state


def save_legacy_bin(model: Any, out_dir: Path, max_shard_size: str) -> list[str]:
    """`pytorch_model.bin` (or numbered shards and an index) plus config and generation config."""
    model.config.save_pretrained(out_dir)
    if model.can_generate() and model.generation_config is not None:
        model.generation_config.save_pretrained(out_dir)
    state = untied_state_dict(model)
    split = split_torch_state_dict_into_shards(state, filename_pattern="pytorch_model{suffix}.bin",
                                               max_shard_size=max_shard_size)
    for filename, names in split.filename_to_tensors.items():
        torch.save({name: state[name].clone() for name in names}, out_dir / filename)
    if split.is_sharded:
        index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in state.values())},
                 "weight_map": split.tensor_to_filename}
        (out_dir / "pytorch_model.bin.index.json").write_text(json.dumps(index, indent=2) + "\n")
    return sorted(split.filename_to_tensors)


def save_weights(model: Any, out_dir: Path, *, max_shard_gb: float, legacy_format: bool = False) -> None:
    """Save config + weights to `out_dir`, removing weight files of the other format left from an earlier run."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in (*WEIGHT_FILES, *(p.name for p in out_dir.glob("model-*-of-*.safetensors")),
                  *(p.name for p in out_dir.glob("pytorch_model-*-of-*.bin"))):
        (out_dir / stale).unlink(missing_ok=True)
    max_shard_size = f"{int(max_shard_gb * 1000)}MB"
    if legacy_format:
        save_legacy_bin(model, out_dir, max_shard_size)
    else:
        model.save_pretrained(out_dir, max_shard_size=max_shard_size)
    share_weight_files(out_dir)
