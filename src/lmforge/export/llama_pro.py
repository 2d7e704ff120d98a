"""LLaMA-Pro block expansion (`lmforge expand`): a copy of every (N/k)-th layer inserted after it, with the copy's
attention and MLP output projections zeroed, so the expanded model computes exactly what the original did.

Training it with `use_llama_pro: true` and `freeze_trainable_layers: k` (freeze or LoRA) then teaches only the
new blocks, leaving the original layers' knowledge in place. The saved folder is reloaded and its logits are
compared with the original's before the command reports success.
"""

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from lmforge.errors import ExportError
from lmforge.hub.resolve import resolve_model_path
from lmforge.model.freeze import layer_stacks

# The projections that write a block's attention and MLP results into the residual stream (LLaMA, Mistral, Qwen,
# Yi, Gemma ... name them so): zeroed, a copied block adds nothing until it is trained.
OUTPUT_PROJECTIONS = ("o_proj", "down_proj")
PROBE = torch.tensor([[1, 5, 17, 42, 99, 7, 3, 250]])


@dataclass(frozen=True)
class Expansion:
    out_dir: Path
    layers_before: int
    layers_after: int
    new_blocks: list[int]  # indices of the inserted blocks in the expanded stack
    max_logit_difference: float


def _expanded_stack(layers: torch.nn.ModuleList, num_expand: int) -> tuple[torch.nn.ModuleList, list[int]]:
    split = len(layers) // num_expand
    expanded, new_blocks = [], []
    for index, layer in enumerate(layers):
        expanded.append(layer)
        if (index + 1) % split == 0:
            block = copy.deepcopy(layer)
            zeroed = [module for name, module in block.named_modules() if name.rsplit(".", 1)[-1] in OUTPUT_PROJECTIONS]
            if not zeroed:
                raise ExportError(f"block expansion zeroes each copied layer's output projections "
                                  f"({', '.join(OUTPUT_PROJECTIONS)}); a layer of this model has none: "
                                  f"{', '.join(name for name, _ in layer.named_children())}")
            for module in zeroed:
                for param in module.parameters():
                    torch.nn.init.zeros_(param)
            new_blocks.append(len(expanded))
            expanded.append(block)
    for index, layer in enumerate(expanded):  # attention caches are indexed by layer
        for module in layer.modules():
            if isinstance(getattr(module, "layer_idx", None), int):
                module.layer_idx = index
    return torch.nn.ModuleList(expanded), new_blocks


@torch.inference_mode()
def _logits(model: torch.nn.Module) -> torch.Tensor:
    vocab = model.get_input_embeddings().num_embeddings
    return model.eval()(PROBE % vocab).logits.float()


def expand_blocks(source: str, out_dir: Path, num_expand: int) -> Expansion:
    """Write `source` with `num_expand` zero-initialised blocks to `out_dir`, reloaded and checked by logits."""
    if num_expand < 1:
        raise ExportError(f"--num-expand must be at least 1, got {num_expand}")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ExportError(f"{out_dir} is not empty: expand into a new folder")
    path = resolve_model_path(source)
    model = AutoModelForCausalLM.from_pretrained(path, dtype="auto")
    stacks = layer_stacks(model)
    if len(stacks) != 1:
        raise ExportError(f"block expansion needs one layer stack; {type(model).__name__} has {len(stacks)}")
    layers = model.get_submodule(stacks[0])
    size = len(layers)
    if size % num_expand:
        raise ExportError(f"{type(model).__name__} has {size} layers: --num-expand must divide it "
                          f"(got {num_expand})")
    reference = _logits(model)
    expanded, new_blocks = _expanded_stack(layers, num_expand)
    parent, _, attribute = stacks[0].rpartition(".")
    setattr(model.get_submodule(parent), attribute, expanded)
    config = model.config.get_text_config()
    config.num_hidden_layers = len(expanded)
    if isinstance(getattr(config, "layer_types", None), list) and len(config.layer_types) == size:
        split = size // num_expand  # each copy has the kind (full or sliding attention) of the layer it copies
        types: list[str] = []
        for index, kind in enumerate(config.layer_types):
            types += [kind, kind] if (index + 1) % split == 0 else [kind]
        config.layer_types = types
    model.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(path).save_pretrained(out_dir)
    difference = float((_logits(AutoModelForCausalLM.from_pretrained(out_dir, dtype="auto")) - reference).abs().max())
    if difference > 1e-4:
        raise ExportError(f"the expanded model in {out_dir} computes other logits than {source} "
                          f"(max difference {difference:.3g}); its layers do not add their output to a residual stream")
    return Expansion(out_dir, size, len(expanded), new_blocks, difference)
