"""`finetuning_type: freeze` (train some layers, freeze the rest) and the frozen parts of multimodal models."""

import logging
from collections.abc import Iterable

import torch

from lmforge.config.groups import FinetuningGroup
from lmforge.errors import ModelError
from lmforge.model.components import model_components, under
from lmforge.model.targets import frozen_parts

logger = logging.getLogger(__name__)


def layer_stacks(model: torch.nn.Module, skip: tuple[str, ...] = ()) -> list[str]:
    """Paths of the transformer layer stacks: outermost `ModuleList`s outside `skip` (an encoder-decoder
    model has two). Lists nested in a layer (MoE experts) are not stacks."""
    stacks: list[str] = []
    for name, module in model.named_modules():
        if (isinstance(module, torch.nn.ModuleList) and len(module) > 0 and not under(name, skip)
                and not under(name, tuple(stacks))):
            stacks.append(name)
    return stacks


def expanded_block_indices(size: int, expanded: int, model_name: str) -> list[int]:
    """LLaMA-Pro: the indices of the `expanded` blocks `lmforge expand` inserted into a stack of `size` layers,
    one after each group of (size / expanded - 1) original layers."""
    if size % expanded:
        raise ModelError(f"`use_llama_pro` with `freeze_trainable_layers: {expanded}`: {model_name} has {size} "
                         f"layers, not a multiple of {expanded}; set it to the `--num-expand` of `lmforge expand`")
    stride = size // expanded
    return list(range(stride - 1, size, stride))


def _trainable_layer_prefixes(model: torch.nn.Module, ft: FinetuningGroup, skip: tuple[str, ...]) -> list[str]:
    count = ft.freeze_trainable_layers
    prefixes: list[str] = []
    for stack in layer_stacks(model, skip):
        size = len(model.get_submodule(stack))
        if abs(count) > size or count == 0:
            raise ModelError(f"`freeze_trainable_layers: {count}` does not fit {type(model).__name__}, whose "
                             f"`{stack}` has {size} layers: use 1..{size} (last layers) or -1..-{size} (first)")
        if ft.use_llama_pro:
            indices: Iterable[int] = expanded_block_indices(size, count, type(model).__name__)
        else:
            indices = range(size - count, size) if count > 0 else range(-count)
        prefixes += [f"{stack}.{index}" for index in indices]
    if not prefixes:
        raise ModelError(f"{type(model).__name__} has no layer stack for `finetuning_type: freeze`; "
                         "use `lora` or `full`")
    return prefixes


def _module_names_inside(model: torch.nn.Module, prefix: str) -> set[str]:
    """Dotted names of the modules inside one layer, relative to it (`self_attn`, `mlp.down_proj`, ...)."""
    layer = model.get_submodule(prefix)
    names: set[str] = set()
    for name, _ in layer.named_modules():
        parts = name.split(".") if name else []
        names.update(".".join(parts[i:]) for i in range(len(parts)))
    return names


def apply_freeze(model: torch.nn.Module, ft: FinetuningGroup) -> None:
    """Train the chosen layers (and modules inside them) plus the extra modules; freeze the rest."""
    skip = frozen_parts(model_components(model), ft) + tuple(model_components(model).towers)
    layers = _trainable_layer_prefixes(model, ft, skip)
    modules = ft.freeze_trainable_modules
    if modules != ["all"]:
        inside = _module_names_inside(model, layers[0])
        unknown = [name for name in modules if name not in inside]
        if unknown:
            top = [name for name, _ in model.get_submodule(layers[0]).named_children()]
            raise ModelError(f"`freeze_trainable_modules` {', '.join(unknown)} is not a module inside the layers of "
                             f"{type(model).__name__}; a layer holds: {', '.join(top)} (or use `all`)")
    extras = ft.freeze_extra_modules or []
    if extras:
        paths = [name for name, _ in model.named_modules() if name]
        unknown = [e for e in extras if not any(p == e or p.endswith("." + e) for p in paths)]
        if unknown:
            outside = sorted({p.rsplit(".", 1)[-1] for p in paths if not any(under(p, (s,)) for s in
                                                                              layer_stacks(model, skip))})
            raise ModelError(f"`freeze_extra_modules` {', '.join(unknown)} matches no module of "
                             f"{type(model).__name__}; modules outside the layers: {', '.join(outside)}")

    def trainable(name: str) -> bool:
        module_path = name.rsplit(".", 1)[0]
        for prefix in layers:
            if under(module_path, (prefix,)):
                rest = module_path[len(prefix) + 1:]
                return modules == ["all"] or any(rest == m or rest.startswith(m + ".") for m in modules)
        return any(module_path == e or module_path.endswith("." + e) or f".{e}." in f".{module_path}."
                   for e in extras)

    for name, param in model.named_parameters():
        param.requires_grad_(trainable(name))
    logger.info("freeze: training %s%s", ", ".join(layers), f" and {', '.join(extras)}" if extras else "")


def freeze_parts(model: torch.nn.Module, ft: FinetuningGroup) -> None:
    """Full fine-tuning of a multimodal model: freeze the parts the freeze_* flags name."""
    modules = dict(model.named_modules())
    for prefix in frozen_parts(model_components(model), ft):  # a module, or a loose parameter (`image_newline`)
        (modules[prefix] if prefix in modules else model.get_parameter(prefix)).requires_grad_(False)
        logger.info("kept %s frozen", prefix)
