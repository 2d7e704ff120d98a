"""Turn `model_name_or_path` into a local folder, or explain why it cannot be."""

import os
from dataclasses import dataclass, field
from importlib import import_module
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
    if hub == "openmind":
        raise ModelError(f"`{model.name}` has no openMind id in lmforge's registry: set `model_name_or_path` to its "
                         "Modelers id (`owner/name`), or `model_hub: hf`")
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


@dataclass(frozen=True)
class OtherHub:
    """A model hub other than Hugging Face's: its package (an lmforge extra), its token key, how to fetch by hand."""

    label: str
    package: str
    token_key: str
    download: str  # a command that downloads MODEL_ID into DIR where the hub is reachable
    default_branch: str = "main"


OTHER_HUBS = {
    "modelscope": OtherHub("ModelScope", "modelscope", "ms_hub_token",
                           "modelscope download --model MODEL_ID --local_dir DIR", default_branch="master"),
    # openmind_hub has no command line: its snapshot_download is the documented way to fetch a whole model
    "openmind": OtherHub("openMind (Modelers)", "openmind_hub", "om_hub_token",
                         "python -c \"from openmind_hub import snapshot_download; "
                         "snapshot_download('MODEL_ID', local_dir='DIR')\""),
}


def _offline_fix(model_id: str, hub: str) -> str:
    download = (OTHER_HUBS[hub].download.replace("MODEL_ID", model_id) if hub in OTHER_HUBS
                else f"hf download {model_id} --local-dir DIR")
    return f"download it where a hub is reachable (`{download}`) and set the key to that folder"


def _check_other_hub(model_id: str, what: str, hub: str, registered: str | None = None) -> None:
    from importlib.util import find_spec

    other = OTHER_HUBS[hub]
    if hub_offline():
        raise ModelError(f"{_named(what, model_id, registered)} comes from {other.label}, and no hub is reachable "
                         f"(HF_HUB_OFFLINE=1): {_offline_fix(model_id, hub)}")
    if find_spec(other.package) is None:
        raise ModelError(f"{_named(what, model_id, registered)} with `model_hub: {hub}` needs the {other.package} "
                         f'package: pip install "lmforge[{hub}]"')


def _other_hub_download(model_id: str, what: str, hub: str, registered: str | None, hub_args: HubArgs) -> str:
    _check_other_hub(model_id, what, hub, registered)
    other = OTHER_HUBS[hub]
    # ModelScope names the default branch `master`, where the Hugging Face default is `main`. The token goes to
    # this one download (not the hub's login, which would save it on the machine for every later process).
    revision = other.default_branch if hub_args.revision == "main" else hub_args.revision
    snapshot_download = import_module(other.package).snapshot_download  # both hubs' packages export it on top
    try:
        return str(snapshot_download(model_id, revision=revision, cache_dir=hub_args.cache_dir,
                                     token=hub_args.token))
    except Exception as err:  # the hubs raise requests', their own and OSError kinds for the same failures
        reason = (str(err).splitlines() or [""])[0]  # the status line; the rest repeats the request
        reason = reason.replace(hub_args.token, "***") if hub_args.token else reason
        raise ModelError(f"{_named(what, model_id, registered)}: the {other.label} download failed "
                         f"({type(err).__name__}: {reason}); check the id, `model_revision` and, for a private "
                         f"model, `{other.token_key}`, or {_offline_fix(model_id, hub)}") from None


def resolve_model_path(name_or_path: str, *, what: str = "model_name_or_path", hub: str = "hf",
                       hub_args: HubArgs | None = None) -> str:
    """A local folder for registered names, builtin names and paths; hub ids as they are when online.

    `hub_args` are the revision, cache folder and token a ModelScope or openMind download uses."""
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
    if hub in OTHER_HUBS:
        return _other_hub_download(name_or_path, what, hub, display, hub_args or HubArgs())
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
    elif hub in OTHER_HUBS and not Path(source).expanduser().is_dir():
        _check_other_hub(source, what, hub, display)
    else:
        resolve_model_path(name_or_path, what=what, hub=hub)
