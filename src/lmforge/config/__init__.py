"""Configuration: flat LLaMA-Factory-style YAML into typed, validated groups (no torch import)."""

from lmforge.config.groups import LmforgeConfig
from lmforge.config.loader import build_config, load_config

__all__ = ["LmforgeConfig", "build_config", "load_config"]
