"""`--from dcp`: a torch.distributed.checkpoint (FSDP / accelerate) folder -> a safetensors folder.

torch's own `dcp_to_torch_save` gathers the shards. Model weights saved under a `model` entry (as
FSDP recipes and accelerate do) are taken from there; optimizer state is left out.
"""

import tempfile
from pathlib import Path

import torch
from rich.console import Console

from lmforge.errors import ExportError
from lmforge.export.convert.common import (
    ConversionResult,
    build_model,
    load_tokenizer_if_any,
    read_hf_config,
    save_and_verify,
)


def _model_state(loaded: dict) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The model's tensors and what else the checkpoint held (reported, not converted)."""
    if isinstance(loaded.get("model"), dict):
        return loaded["model"], [key for key in loaded if key != "model"]
    tensors = {k: v for k, v in loaded.items() if isinstance(v, torch.Tensor)}
    return tensors, [k for k in loaded if k not in tensors]


def convert(source: Path, out_dir: Path, *, config: Path | None = None,
            console: Console | None = None) -> ConversionResult:
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    if not (source / ".metadata").is_file():
        raise ExportError(f"{source} is not a torch.distributed.checkpoint folder: it has no `.metadata` file")
    hf_config = read_hf_config(source, what=f"DCP checkpoint {source}",
                               config_path=config or (source.parent if not (source / "config.json").is_file()
                                                      and (source.parent / "config.json").is_file() else None))
    with tempfile.TemporaryDirectory() as scratch:
        gathered = Path(scratch) / "gathered.pt"
        dcp_to_torch_save(source, gathered)
        loaded = torch.load(gathered, weights_only=True)
    state, others = _model_state(loaded)
    state = {key.removeprefix("_orig_mod.").removeprefix("module."): value for key, value in state.items()}
    model = build_model(hf_config, state, what=f"DCP checkpoint {source}")
    notes = [f"gathered {len(state)} tensors from {source}"]
    if others:
        notes.append(f"left out (not model weights): {', '.join(others)}")
    tokenizer_folder = source if (source / "tokenizer_config.json").is_file() else source.parent
    return save_and_verify(model, out_dir, what=f"DCP checkpoint {source.name}",
                           tokenizer=load_tokenizer_if_any(tokenizer_folder), side_files=tokenizer_folder,
                           notes=notes, console=console)
