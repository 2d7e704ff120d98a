"""Does a saved adapter belong to the configured base model? Checked on the skeleton before any weight loads.

An adapter trained on another base (a tiny-llama LoRA given to SmolLM2) fails inside peft with a long
"size mismatch" traceback. Its safetensors header holds every tensor's shape without reading the data, and
the base's skeleton (meta device) holds every layer's sizes, so the mismatch is found, and named, first.
"""

import json
import struct
from pathlib import Path
from typing import Any

import torch

from lmforge.errors import ModelError

# peft saves an adapter's tensors under the wrapped model's names: "base_model.model.<module path>.lora_A.weight"
PEFT_PREFIX = "base_model.model."
LORA_PARTS = {"lora_A": "in", "lora_B": "out", "lora_embedding_A": "in", "lora_embedding_B": "out"}
# OFT's tensors sit on the module they rotate; their shapes follow its block layout, so only the module is looked for
OFT_PARTS = ("oft_R", "oft_s")
SHOWN_MISMATCHES = 3


def safetensors_shapes(path: Path) -> dict[str, list[int]]:
    """Tensor name -> shape, read from the file's JSON header only."""
    with path.open("rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(size))
    return {name: entry["shape"] for name, entry in header.items() if name != "__metadata__"}


def _sizes(module: torch.nn.Module) -> tuple[int, int] | None:
    """(input, output) sizes of a layer LoRA adapts, or None when it is not one we can read."""
    if isinstance(module, torch.nn.Linear):
        return module.in_features, module.out_features
    if isinstance(module, torch.nn.Embedding):
        return module.num_embeddings, module.embedding_dim
    if isinstance(module, torch.nn.Conv1d | torch.nn.Conv2d):
        return module.in_channels, module.out_channels
    weight = getattr(module, "weight", None)  # GPT-2's Conv1D keeps (in, out)
    if type(module).__name__ == "Conv1D" and weight is not None and weight.dim() == 2:
        return int(weight.shape[0]), int(weight.shape[1])
    return None


def _expected(name: str, shape: list[int], modules: dict[str, torch.nn.Module], parameters: dict[str, torch.Tensor],
              vocab_sized: set[str]) -> tuple[bool, str | None]:
    """(the base has this tensor's module, a mismatch description or None). The vocabulary dimension of the
    modules in `vocab_sized` is not compared: new tokens resize it before an adapter loads."""
    for part, side in LORA_PARTS.items():
        marker = f".{part}."
        if marker in name or name.endswith(f".{part}"):
            path = name.split(marker)[0] if marker in name else name.removesuffix(f".{part}")
            module = modules.get(path)
            if module is None:
                return False, None
            sizes = _sizes(module)
            if sizes is None:
                return True, None
            if path in vocab_sized:  # grows with `add_tokens` / `resize_vocab` before the adapter loads
                return True, None
            # lora_A is (r, in) and lora_B (out, r); an embedding's are (r, vocab) and (dim, r)
            axis, want = (1, sizes[0]) if side == "in" else (0, sizes[1])
            if len(shape) >= 2 and shape[axis] != want:
                what = "input" if side == "in" else "output"
                return True, f"`{path}` has {what} size {want} in the base, {shape[axis]} in the adapter"
            return True, None
    for part in OFT_PARTS:
        if f".{part}." in name or name.endswith(f".{part}"):
            return name.split(f".{part}")[0] in modules, None
    parameter = parameters.get(name)
    if parameter is None:
        return False, None
    compared = slice(1, None) if name.rsplit(".", 1)[0] in vocab_sized else slice(None)
    if list(parameter.shape)[compared] != list(shape)[compared]:
        return True, f"`{name}` is {list(parameter.shape)} in the base, {shape} in the adapter"
    return True, None


def check_adapter_fits(skeleton: torch.nn.Module, adapter: str, model_name: str) -> None:
    """Refuse an adapter whose tensors do not fit `skeleton` (the configured base), naming both models."""
    folder = Path(adapter).expanduser()
    weights = folder / "adapter_model.safetensors"
    if not weights.is_file():  # a .bin adapter or a hub id: peft reports those itself
        return
    trained_on = _trained_on(folder)
    modules = dict(skeleton.named_modules())
    parameters = dict(skeleton.named_parameters())
    embeddings = [skeleton.get_input_embeddings(), skeleton.get_output_embeddings()]
    vocab_sized = {path for path, module in modules.items() if any(module is e for e in embeddings if e is not None)}
    found, mismatches = 0, []
    for name, shape in safetensors_shapes(weights).items():
        present, mismatch = _expected(name.removeprefix(PEFT_PREFIX), shape, modules, parameters, vocab_sized)
        found += present
        if mismatch:
            mismatches.append(mismatch)
    if not mismatches and found:
        return
    problem = ("its layers do not fit: " + "; ".join(mismatches[:SHOWN_MISMATCHES])
               + (f" (and {len(mismatches) - SHOWN_MISMATCHES} more)" if len(mismatches) > SHOWN_MISMATCHES else "")
               if mismatches else f"none of its modules exists in {type(skeleton).__name__}")
    raise ModelError(f"adapter {adapter} was trained on {trained_on}, not on {model_name}: {problem}. Set "
                     f"`model_name_or_path` to the adapter's base model, or use an adapter trained on {model_name}")


def _trained_on(folder: Path) -> str:
    try:
        config: dict[str, Any] = json.loads((folder / "adapter_config.json").read_text())
    except (OSError, ValueError):
        return "another model"
    return config.get("base_model_name_or_path") or "another model"
