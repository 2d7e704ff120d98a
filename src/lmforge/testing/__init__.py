"""Tiny deterministic models and tokenizers for tests and examples, built from config in seconds."""

from lmforge.testing.tiny import TINY_FAMILIES, build_tiny_model, build_tiny_tokenizer

__all__ = ["TINY_FAMILIES", "build_tiny_model", "build_tiny_tokenizer"]
