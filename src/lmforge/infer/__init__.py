"""Inference: a chat engine over transformers' generate."""
