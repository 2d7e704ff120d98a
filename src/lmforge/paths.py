"""Where lmforge keeps its files: the cache home and the shipped resources."""

import os
from pathlib import Path


def lmforge_home() -> Path:
    """Cache folder for converted builtin models and other derived files (`LMFORGE_HOME`)."""
    return Path(os.environ.get("LMFORGE_HOME", Path.home() / ".cache" / "lmforge")).expanduser()


def models_cache() -> Path:
    return lmforge_home() / "models"


def share_weight_files(folder: Path) -> None:
    """Give the weight files in `folder` the mode of the JSON saved beside them (0644 under the usual umask).

    safetensors creates its files 0600, unlike every other file written next to them, so a model or adapter
    saved for others to use would be readable by its owner only."""
    beside = next((folder / name for name in ("config.json", "adapter_config.json", "tokenizer_config.json")
                   if (folder / name).is_file()), None)
    if beside is None:
        return
    mode = beside.stat().st_mode & 0o777
    for weights in folder.glob("*.safetensors"):
        weights.chmod(mode)
