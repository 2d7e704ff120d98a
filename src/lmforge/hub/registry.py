"""The model registry: display names -> where the weights come from, their template, and modality.

Groups are declared as data in `hub/model_groups.py` (a `ModelGroup` in its `GROUPS`); elsewhere:

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
from dataclasses import dataclass, field

from lmforge.errors import ModelError
from lmforge.hub.model_groups import GROUPS, ModelGroup
from lmforge.registry import Registry

SOURCES = ("local", "builtin", "hf", "modelscope")


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    sources: dict[str, str]
    template: str | None
    multimodal: bool
    group: str
    description: str = field(default="")


MODELS: Registry[RegisteredModel] = Registry("model", ModelError, listing="lmforge models list")


def register_group(group: ModelGroup) -> list[RegisteredModel]:
    """Register each display name of `group` with its sources."""
    registered: list[RegisteredModel] = []
    for name, sources in group.models.items():
        unknown = [source for source in sources if source not in SOURCES]
        if unknown or not sources:
            raise ModelError(f"model `{name}`: sources must be some of {', '.join(SOURCES)} (got {list(sources)})")
        model = RegisteredModel(name, dict(sources), group.template, group.multimodal,
                                group.group or name.split("-")[0], group.description)
        registered.append(MODELS.register(name, model))
    return registered


def register_model_group(
    models: dict[str, dict[str, str]],
    template: str | None = None,
    multimodal: bool = False,
    group: str | None = None,
    description: str = "",
) -> list[RegisteredModel]:
    """Register display names with their sources; all share `template` and `multimodal`."""
    return register_group(ModelGroup(models, template, multimodal, group, description))


for _group in GROUPS:
    register_group(_group)


def list_models() -> list[RegisteredModel]:
    return MODELS.entries()


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
