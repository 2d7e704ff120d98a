"""The parts of a model that training treats differently: language model, vision/audio towers, projector.

Found through transformers' own accessors (`get_encoder(modality=...)`, `get_decoder()`), not by
guessing names. A text-only model is all language model.
"""

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class Components:
    """Module-name prefixes of each part; empty for a text-only model."""

    towers: tuple[str, ...] = ()  # vision and audio encoders
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
    for modality in ("image", "audio"):
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
    return Components(tuple(towers), tuple(projectors), (language,) if language else ())


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)
