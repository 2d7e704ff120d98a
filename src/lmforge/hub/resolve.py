"""Turn `model_name_or_path` into a local folder, or explain why it cannot be."""

import os
from dataclasses import dataclass, field
from pathlib import Path

from lmforge.errors import ModelError
from lmforge.hub.builtin import PREFIX, builtin_path, is_builtin
from lmforge.hub.registry import RegisteredModel, find_model


@dataclass(frozen=True)
class HubArgs:
    """What a hub download takes besides the id: the revision, the cache folder and the token (None: the
    hub's own environment variable or saved login)."""

    revision: str = "main"
    cache_dir: str | None = None
    token: str | None = field(default=None, repr=False)


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def registered_source(model: RegisteredModel, hub: str = "hf") -> str:
    """Where a registered display name loads from: a local folder, else the builtin, else the chosen hub."""
    sources = model.sources
    if "local" in sources and Path(sources["local"]).expanduser().is_dir():
        return sources["local"]
    if "builtin" in sources:
        return PREFIX + sources["builtin"]
    if hub in sources:
        return sources[hub]
    if "hf" in sources or "modelscope" in sources:
        other = "hf" if "hf" in sources else "modelscope"
        raise ModelError(f"`{model.name}` has no `{hub}` source, only {other}: set `model_hub: {other}`")
    raise ModelError(f"`{model.name}` is registered from the local folder {sources.get('local')}, which does "
                     "not exist: create it or register where the model lives")


def _named(what: str, name_or_path: str, registered: str | None) -> str:
    """How a message names the reference: `what: VALUE`, and the hub id a registered name stands for."""
    if registered is None:
        return f"`{what}: {name_or_path}`"
    return f"`{what}: {registered}` (registered as the hub id `{name_or_path}`)"


def _offline_fix(model_id: str, hub: str) -> str:
    download = (f"modelscope download --model {model_id} --local_dir DIR" if hub == "modelscope"
                else f"hf download {model_id} --local-dir DIR")
    return f"download it where a hub is reachable (`{download}`) and set the key to that folder"


def _check_modelscope(model_id: str, what: str, registered: str | None = None) -> None:
    from importlib.util import find_spec

    if hub_offline():
        raise ModelError(f"{_named(what, model_id, registered)} comes from ModelScope, and no hub is reachable "
                         f"(HF_HUB_OFFLINE=1): {_offline_fix(model_id, 'modelscope')}")
    if find_spec("modelscope") is None:
        raise ModelError(f"{_named(what, model_id, registered)} with `model_hub: modelscope` needs the modelscope "
                         'package: pip install "lmforge[modelscope]"')


def _modelscope_download(model_id: str, what: str, registered: str | None, hub_args: HubArgs) -> str:
    _check_modelscope(model_id, what, registered)
    from modelscope import snapshot_download

    # ModelScope names the default branch `master`, where the Hugging Face default is `main`. The token goes to
    # this one download (not `modelscope login`, which would save it on the machine for every later process).
    revision = "master" if hub_args.revision == "main" else hub_args.revision
    try:
        return str(snapshot_download(model_id, revision=revision, cache_dir=hub_args.cache_dir,
                                     token=hub_args.token))
    except Exception as err:  # modelscope raises requests', its own and OSError kinds for the same failures
        reason = (str(err).splitlines() or [""])[0]  # the status line; the rest repeats the request
        reason = reason.replace(hub_args.token, "***") if hub_args.token else reason
        raise ModelError(f"{_named(what, model_id, registered)}: the ModelScope download failed "
                         f"({type(err).__name__}: {reason}); check the id, `model_revision` and, for a private "
                         f"model, `ms_hub_token`, or {_offline_fix(model_id, 'modelscope')}") from None


def resolve_model_path(name_or_path: str, *, what: str = "model_name_or_path", hub: str = "hf",
                       hub_args: HubArgs | None = None) -> str:
    """A local folder for registered names, builtin names and paths; hub ids as they are when online.

    `hub_args` are the revision, cache folder and token a ModelScope download uses."""
    registered = find_model(name_or_path)
    display = None
    if registered is not None and registered.name == name_or_path:
        name_or_path, display = registered_source(registered, hub), registered.name
    if is_builtin(name_or_path):
        return str(builtin_path(name_or_path))
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            raise ModelError(f"`{what}: {name_or_path}` is a folder without config.json or "
                             "adapter_config.json: point it at a saved model or adapter folder")
        return str(path)
    looks_local = name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1
    if looks_local:
        raise ModelError(f"`{what}: {name_or_path}`: no such folder")
    if hub == "modelscope":
        return _modelscope_download(name_or_path, what, display, hub_args or HubArgs())
    if hub_offline():
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name_or_path, "config.json")
        if isinstance(cached, str):
            return str(Path(cached).parent)
        raise ModelError(
            f"{_named(what, name_or_path, display)} is not a local folder nor in the hub cache, and no model hub "
            f"is reachable (HF_HUB_OFFLINE=1): {_offline_fix(name_or_path, 'hf')}; or use a builtin model "
            "(`builtin:smollm2-135m-instruct`)")
    return name_or_path


def check_model_reference(name_or_path: str | None, *, what: str = "model_name_or_path", hub: str = "hf") -> None:
    """Fail fast on a model reference that cannot resolve, without building or loading anything."""
    from lmforge.hub.builtin import get_builtin

    if not name_or_path:
        raise ModelError(f"set `{what}` (a local folder, a registered model name, `builtin:NAME` or a hub id)")
    registered = find_model(name_or_path)
    display = registered.name if registered is not None and registered.name == name_or_path else None
    source = registered_source(registered, hub) if registered is not None and display else name_or_path
    if is_builtin(source):
        get_builtin(source)
    elif hub == "modelscope" and not Path(source).expanduser().is_dir():
        _check_modelscope(source, what, display)
    else:
        resolve_model_path(name_or_path, what=what, hub=hub)
