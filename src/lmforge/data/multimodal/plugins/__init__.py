"""Builtin multimodal plugins, one module per model family; importing this package registers them."""

from lmforge.data.multimodal.plugins import (  # noqa: F401
    gemma3,
    intern_vl,
    llama4,
    llava,
    llava_next,
    mllama,
    paligemma,
    pixtral,
    qwen2_audio,
    qwen2_vl,
)
