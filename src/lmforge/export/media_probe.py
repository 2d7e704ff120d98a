"""The probe batch of a vision-language model's export: a prompt with an image, through the same
multimodal plugin training and chat use, so the merged export is checked on the vision path too."""

from typing import Any

import torch

from lmforge.config import LmforgeConfig
from lmforge.data.multimodal.collator import generation_inputs
from lmforge.data.multimodal.examples import MMEncoder
from lmforge.data.multimodal.media import MediaOptions
from lmforge.data.multimodal.plugin import mm_plugin_for
from lmforge.data.templates.template import Message, Template


def probe_image() -> Any:
    """A 64x48 gradient: deterministic, and not one flat color (which some vision towers normalize away)."""
    from PIL import Image

    image = Image.new("RGB", (64, 48))
    image.putdata([(x * 4, y * 5, (x + y) * 2) for y in range(48) for x in range(64)])
    return image


def media_probe_batch(cfg: LmforgeConfig, processor: Any, template: Template | None) -> dict[str, torch.Tensor] | None:
    """A prompt with one image for `generate`-style logits; None when the model takes no images."""
    plugin = mm_plugin_for(processor) if processor is not None else None
    if plugin is None or "images" not in plugin.markers:
        return None
    encoder = MMEncoder(processor, plugin, template, MediaOptions.from_config(cfg.data), cfg.data.cutoff_len)
    prompt = encoder.prompt([Message("user", "Describe the picture.")], {"images": [probe_image()]})
    return generation_inputs(encoder, [prompt])
