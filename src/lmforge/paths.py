"""Where lmforge keeps its files: the cache home and the shipped resources."""

import os
from pathlib import Path


def lmforge_home() -> Path:
    """Cache folder for converted builtin models and other derived files (`LMFORGE_HOME`)."""
    return Path(os.environ.get("LMFORGE_HOME", Path.home() / ".cache" / "lmforge")).expanduser()


def models_cache() -> Path:
    return lmforge_home() / "models"
