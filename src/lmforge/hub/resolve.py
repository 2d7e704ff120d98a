"""Turn `model_name_or_path` into a local folder, or explain why it cannot be."""

import os
from pathlib import Path

from lmforge.errors import ModelError
from lmforge.hub.builtin import builtin_path, is_builtin


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def resolve_model_path(name_or_path: str, *, what: str = "model_name_or_path") -> str:
    """A local folder for builtin names and paths; hub ids are returned as they are when online."""
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
    if hub_offline():
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name_or_path, "config.json")
        if isinstance(cached, str):
            return str(Path(cached).parent)
        raise ModelError(
            f"`{what}: {name_or_path}` is not a local folder and no model hub is reachable "
            "(HF_HUB_OFFLINE=1): download it elsewhere and set the key to that folder, "
            "or use a builtin model (`builtin:smollm2-135m-instruct`)")
    return name_or_path


def check_model_reference(name_or_path: str | None, *, what: str = "model_name_or_path") -> None:
    """Fail fast on a model reference that cannot resolve, without building or loading anything."""
    from lmforge.hub.builtin import get_builtin

    if not name_or_path:
        raise ModelError(f"set `{what}` (a local folder, `builtin:NAME` or a hub id)")
    if is_builtin(name_or_path):
        get_builtin(name_or_path)
    else:
        resolve_model_path(name_or_path, what=what)
