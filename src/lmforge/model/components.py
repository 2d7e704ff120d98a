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


# Towers transformers' `get_encoder` does not reach: Phi-4-multimodal keeps its image and audio encoders (each with
# its projection beside it) inside the language model's embedding layer.
NESTED_TOWERS = {"Phi4MultimodalForCausalLM": ("model.embed_tokens_extend.image_embed.img_processor",
                                               "model.embed_tokens_extend.audio_embed.encoder")}


def _joined(parent: str, child: str) -> str:
    return f"{parent}.{child}" if parent else child


def _towers(model: torch.nn.Module) -> list[str]:
    nested = NESTED_TOWERS.get(type(model).__name__)
    if nested:
        return list(nested)
    towers: list[str] = []
    for modality in ("image", "video", "audio"):  # Video-LLaVA has a video tower of its own
        try:
            tower = model.get_encoder(modality=modality)
        except (TypeError, ValueError, AttributeError):
            continue
        name = _name_of(model, tower)
        if name and name not in towers:
            towers.append(name)
    return towers


def model_components(model: torch.nn.Module) -> Components:
    if getattr(model, "get_encoder", None) is None:
        return Components()
    towers = _towers(model)
    if not towers:
        return Components()
    language = _name_of(model, model.get_decoder())
    # The projector is what remains beside each tower and the language model, inside the same wrapper.
    taken = {*towers, language}
    projectors: list[str] = []
    for parent_name in dict.fromkeys(tower.rpartition(".")[0] for tower in towers):
        parent = model.get_submodule(parent_name) if parent_name else model
        projectors += [_joined(parent_name, child) for child, module in parent.named_children()
                       if _joined(parent_name, child) not in taken and any(True for _ in module.parameters())]
        # loose parameters of the wrapper join the projector (LLaVA-NeXT's `image_newline`)
        projectors += [_joined(parent_name, name) for name, _ in parent.named_parameters(recurse=False)]
    text_parts: tuple[str, ...] = (language,) if language else ()
    if language and any(under(tower, text_parts) for tower in towers):  # Phi-4: the towers sit in the decoder
        decoder = model.get_submodule(language)
        text_parts = tuple(_joined(language, child) for child, module in decoder.named_children()
                           if not any(under(tower, (_joined(language, child),)) for tower in towers)
                           and any(True for _ in module.parameters()))
    # the output head predicts text: it is part of the language model
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    head_name = _name_of(model, head) if head is not None else None
    if head_name and not under(head_name, text_parts):
        text_parts += (head_name,)
    return Components(tuple(towers), tuple(projectors), text_parts)


def under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)
