"""Which modules LoRA adapts: `lora_target: all` per architecture, named targets checked against the model.

`all` is every linear layer of the language model except the output head; the vision/audio towers
of a multimodal model join only when they are unfrozen. An unfrozen projector (small, and often not
made of linear layers) is trained in full next to the adapters instead. Named targets must match a
real module name, or the error lists the model's linear layers (ChatGLM-style models name theirs
`query_key_value`, `dense`, `dense_h_to_4h`, `dense_4h_to_h`, so T5's `q`, `v` match nothing).
"""

import re
from dataclasses import dataclass

import torch

from lmforge.config.groups import FinetuningGroup
from lmforge.errors import ModelError
from lmforge.model.components import Components, model_components, under


@dataclass(frozen=True)
class LoraTargets:
    target_modules: list[str]  # short module names, as peft matches them
    exclude_modules: str | None  # a regex of module paths kept out (frozen parts of a multimodal model)


def frozen_parts(components: Components, ft: FinetuningGroup) -> tuple[str, ...]:
    """Prefixes of the parts of a multimodal model that stay frozen."""
    parts: list[str] = []
    if ft.freeze_vision_tower:
        parts += components.towers
    if ft.freeze_multi_modal_projector:
        parts += components.projectors
    if ft.freeze_language_model:
        parts += components.language
    return tuple(parts)


def check_freeze_flags(components: Components, ft: FinetuningGroup, architecture: str) -> None:
    """The freeze_* keys of a multimodal run against the parts the model skeleton has (before weights load)."""
    if not components.towers:
        if not ft.freeze_vision_tower or not ft.freeze_multi_modal_projector or ft.freeze_language_model:
            raise ModelError(f"{architecture} has no vision or audio tower that transformers' `get_encoder` names "
                             "(Chameleon-style models read images as tokens), so `freeze_vision_tower`, "
                             "`freeze_multi_modal_projector` and `freeze_language_model` cannot apply: remove them")
        return
    if not ft.freeze_multi_modal_projector and not components.projectors and ft.freeze_vision_tower:
        raise ModelError(f"`freeze_multi_modal_projector: false`, but {architecture} has no projector beside its "
                         f"tower `{components.towers[0]}` (its patch merger is part of the tower): set "
                         "`freeze_vision_tower: false` to train the tower with its merger")
    if ft.freeze_vision_tower and ft.freeze_language_model and (ft.freeze_multi_modal_projector
                                                                or not components.projectors):
        raise ModelError(f"every part of {architecture} is frozen (`freeze_vision_tower`, "
                         "`freeze_multi_modal_projector`, `freeze_language_model`): unfreeze the part to train")


def short_name(path: str) -> str:
    """The last part of a module path, with its list's name when it is an index: `altup_projections.0`, since a
    bare `0` would also match every `layers.0` (Gemma 3n keeps linear layers in lists)."""
    parts = path.split(".")
    last = len(parts) - 1
    while last > 0 and parts[last].isdigit():
        last -= 1
    return ".".join(parts[last:])


def linear_module_names(model: torch.nn.Module, skip: tuple[str, ...] = ()) -> list[str]:
    """Short names of every linear layer except the output head and modules under `skip`, in model order."""
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    names: list[str] = []
    for full_name, module in model.named_modules():
        # a Linear subclass with its own forward is no plain layer (Llama 4's router returns scores and logits),
        # except bitsandbytes' quantized layers (QLoRA), whose forward is a linear one on dequantized weights
        plain = isinstance(module, torch.nn.Linear) and (type(module).forward is torch.nn.Linear.forward
                                                         or type(module).__module__.startswith("bitsandbytes."))
        if plain and module is not output and not under(full_name, skip):
            short = short_name(full_name)
            if short not in names:
                names.append(short)
    return names


def check_module_names(model: torch.nn.Module, names: list[str], key: str) -> None:
    """Every name must be the last part(s) of some module path, else list what the model has."""
    paths = [name for name, _ in model.named_modules() if name]
    unknown = [name for name in names if not any(p == name or p.endswith("." + name) for p in paths)]
    if unknown:
        raise ModelError(f"`{key}` {', '.join(unknown)} matches no module of {type(model).__name__}; "
                         f"its linear layers are: {', '.join(linear_module_names(model))}"
                         + (" (or use `lora_target: all`)" if key == "lora_target" else ""))


def lora_targets(model: torch.nn.Module, requested: list[str], ft: FinetuningGroup) -> LoraTargets:
    components = model_components(model)
    frozen = frozen_parts(components, ft)
    exclude = "|".join(re.escape(prefix) for prefix in frozen)
    exclude_regex = rf"^({exclude})(\..*)?$" if exclude else None
    if requested == ["all"]:
        candidates = linear_module_names(model, skip=frozen + components.projectors)
        if not candidates:
            raise ModelError(f"{type(model).__name__} has no linear layer left for LoRA"
                             + (" (every part is frozen: check the freeze_* keys)" if frozen else ""))
        return LoraTargets(candidates, exclude_regex)
    check_module_names(model, requested, "lora_target")
    return LoraTargets(list(requested), exclude_regex)
