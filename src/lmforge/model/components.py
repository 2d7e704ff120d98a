"""The parts of a model that training treats differently: language model, vision/audio towers, projector.

Found through transformers' own accessors (`get_encoder(modality=...)`, `get_decoder()`), not by
guessing names. A text-only model is all language model.
"""

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Components:
    """Module-name prefixes of each part; empty for a text-only model."""

    towers: tuple[str, ...] = ()  # image, video and audio encoders
    projectors: tuple[str, ...] = ()  # what maps tower features into the language model
    language: tuple[str, ...] = field(default=())

    @property
    def multimodal(self) -> bool:
        return bool(self.towers)


def _name_of(model: torch.nn.Module, target: torch.nn.Module) -> str | None:
    for name, module in model.named_modules():
        if module is target:
            return name
    return None


def model_components(model: torch.nn.Module) -> Components:
    get_encoder = getattr(model, "get_encoder", None)
    if get_encoder is None:
        return Components()
    towers: list[str] = []
    for modality in ("image", "video", "audio"):  # Video-LLaVA has a video tower of its own
        try:
            tower = get_encoder(modality=modality)
        except (TypeError, ValueError, AttributeError):
            continue
        name = _name_of(model, tower)
        if name and name not in towers:
            towers.append(name)
    if not towers:
        return Components()
    language = _name_of(model, model.get_decoder())
    # The projector is what remains beside the towers and the language model, inside the same wrapper.
    parent_name = towers[0].rpartition(".")[0]
    parent = model.get_submodule(parent_name) if parent_name else model
    taken = {*towers, language}
    projectors = [f"{parent_name}.{child}" if parent_name else child
                  for child, module in parent.named_children()
                  if (f"{parent_name}.{child}" if parent_name else child) not in taken
                  and any(True for _ in module.parameters())]
    # loose parameters of the wrapper join the projector (LLaVA-NeXT's `image_newline`)
    projectors += [f"{parent_name}.{name}" if parent_name else name
                   for name, _ in parent.named_parameters(recurse=False)]
    # the output head predicts text: it is part of the language model
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    head_name = _name_of(model, head) if head is not None else None
    text_parts: tuple[str, ...] = (language,) if language else ()
    if head_name and not under(head_name, text_parts):
        text_parts += (head_name,)
    return Components(tuple(towers), tuple(projectors), text_parts)


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)
