"""The model registry: display names -> where the weights come from, their template, and modality.

The builtin registrations are the rows of `hub/models.tsv` (read by `hub/model_groups.py`); elsewhere:

    register_model_group(
        models={"Qwen2.5-0.5B-Instruct": {"hf": "Qwen/Qwen2.5-0.5B-Instruct",
                                          "modelscope": "Qwen/Qwen2.5-0.5B-Instruct"}},
        template="qwen",
    )

Sources: `hf` and `modelscope` (hub ids), `local` (a folder) and `builtin` (a builtin model's name).
`model_name_or_path` may then be the display name; the registry also supplies the default template,
whether the name or one of the model's source ids is used.
"""

import difflib
from collections.abc import Collection
from dataclasses import dataclass, field

from lmforge.errors import ModelError
from lmforge.hub.builtin import get_builtin
from lmforge.hub.model_groups import GROUPS, ModelGroup, check_modality
from lmforge.registry import Registry

SOURCES = ("local", "builtin", "hf", "modelscope")


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    sources: dict[str, str]
    template: str | None
    modality: str  # "text", or the media it takes ("image,video")
    group: str
    description: str = field(default="")

    @property
    def multimodal(self) -> bool:
        return self.modality != "text"

    @property
    def hub_ids(self) -> dict[str, str]:
        """Its ids on the model hubs (`hf`, `modelscope`)."""
        return {hub: ref for hub, ref in self.sources.items() if hub in ("hf", "modelscope")}


MODELS: Registry[RegisteredModel] = Registry("model", ModelError, listing="lmforge models list")


def register_group(group: ModelGroup) -> list[RegisteredModel]:
    """Register each display name of `group` with its sources."""
    registered: list[RegisteredModel] = []
    for name, sources in group.models.items():
        unknown = [source for source in sources if source not in SOURCES]
        if unknown or not sources:
            raise ModelError(f"model `{name}`: sources must be some of {', '.join(SOURCES)} (got {list(sources)})")
        problem = check_modality(group.modality)
        if problem:
            raise ModelError(f"model `{name}`: {problem}")
        template = group.template or (get_builtin(sources["builtin"]).template if "builtin" in sources else None)
        model = RegisteredModel(name, dict(sources), template, group.modality,
                                group.group or name.split("-")[0], group.description)
        registered.append(MODELS.register(name, model))
    return registered


def register_model_group(
    models: dict[str, dict[str, str]],
    template: str | None = None,
    multimodal: bool = False,
    group: str | None = None,
    description: str = "",
    modality: str | None = None,
) -> list[RegisteredModel]:
    """Register display names with their sources; all share `template` and modality (`modality`, else
    `image` when `multimodal`, else `text`)."""
    modality = modality or ("image" if multimodal else "text")
    return register_group(ModelGroup(models, template, modality, group, description))


for _group in GROUPS:
    register_group(_group)


def list_models() -> list[RegisteredModel]:
    return MODELS.entries()


def in_family(model: RegisteredModel, family: str) -> bool:
    """`family` names the model's group or a group it heads: `Qwen3` is Qwen3, Qwen3-VL and Qwen3-Omni."""
    group, family = model.group.lower(), family.lower()
    return group == family or group.startswith(family + "-")


def filter_models(family: str | None = None, multimodal: bool | None = None,
                  templates: Collection[str] | None = None) -> list[RegisteredModel]:
    """Registered models of `family`, of that modality, whose template is one of `templates` (None: any)."""
    return [model for model in MODELS.entries()
            if (family is None or in_family(model, family))
            and (multimodal is None or model.multimodal == multimodal)
            and (templates is None or model.template in templates)]


def find_model(name_or_path: str | None) -> RegisteredModel | None:
    """The registered model `name_or_path` names, by display name or by one of its source ids."""
    if not name_or_path:
        return None
    if name_or_path in MODELS:
        return MODELS.get(name_or_path)
    bare = name_or_path.removeprefix("builtin:")
    for model in MODELS.entries():
        if name_or_path in model.sources.values() or model.sources.get("builtin") == bare:
            return model
    return None


def get_model(name: str) -> RegisteredModel:
    model = find_model(name)
    if model is None:
        close = difflib.get_close_matches(name, MODELS.names(), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
        raise ModelError(f"no registered model `{name}`{hint} (`lmforge models list` shows all {len(MODELS)})")
    return model
