"""Image prompts of the online RL stages on vision-language models, in the form trl's GRPO/RLOO trainers take.

The dataset keeps each prompt as the run's template rendered it, `<image>` placeholders included, with its
image paths (`data/prompts.py`). Per batch, the images are decoded with the run's media keys (`image_max_pixels`
..., as SFT's collator decodes them) and each placeholder becomes the marker the model's processor expands
(Qwen2-VL's `<|vision_start|><|image_pad|><|vision_end|>`), so the processor writes the image tokens and the
pixel tensors as it does for SFT's examples. trl takes images only with conversational prompts: a prompt
becomes one message holding the rendered text, and trl's own processor calls get a chat template that writes
the text as it is (`passthrough_template`), so the prompt is never rendered a second time. trl's call for the
pixel tensors lets the tokenizer add its own special tokens: where it adds a BOS (Gemma 3, LLaVA's Llama), that
template leaves out the BOS the rendering starts with, so the call sees the ids generation saw (a second BOS
would shift Gemma 3's `token_type_ids` by one against the prompt).
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lmforge.data.multimodal.collator import MultimodalCollator
from lmforge.data.multimodal.media import MediaError, MediaOptions, decode_media
from lmforge.data.multimodal.plugin import PLACEHOLDERS
from lmforge.data.prompts import IMAGES_COLUMN, SOURCE_COLUMN

# The chat template trl's processor calls use (`chat_template_kwargs`): the prompt's text blocks as they are,
# less the special-token text the tokenizer adds itself at the start (`{prefix}`, a Jinja string).
PASSTHROUGH = ("{{%- for message in messages -%}}{{%- for part in message['content'] -%}}"
               "{{%- if part['type'] == 'text' -%}}{{%- set text = part['text'] -%}}"
               "{{{{ text[{length}:] if {prefix} and text.startswith({prefix}) else text }}}}"
               "{{%- endif -%}}{{%- endfor -%}}{{%- endfor -%}}")
# Plugins whose image tokens are the processor's own expansion of its marker in the prompt text; the others
# (PaliGemma's prefix, Mllama's cross-attention) change ids or inputs that trl's trainers do not carry.
PROCESSOR_EXPANDED = ("qwen2_vl",)


@dataclass(frozen=True)
class MediaPrompts:
    processor: Any
    marker: str  # what the processor expands into an image's tokens
    options: MediaOptions

    def trl_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A batch with images as trl takes it: conversational prompts with decoded `images`; a batch without
        images stays as it is (text prompts)."""
        if not any(row.get(IMAGES_COLUMN) for row in rows):
            return rows
        converted = []
        for row in rows:
            paths, text, where = row.get(IMAGES_COLUMN) or [], row["prompt"], row.get(SOURCE_COLUMN, "prompt")
            if text.count(PLACEHOLDERS["images"]) != len(paths):
                raise MediaError(f"{where}: the rendered prompt has {text.count(PLACEHOLDERS['images'])} `<image>` "
                                 f"placeholder(s) for {len(paths)} images; the template or system prompt must not "
                                 "write `<image>` itself")
            images = decode_media({"images": paths}, self.options, where).images
            content = text.replace(PLACEHOLDERS["images"], self.marker)
            converted.append({**row, "prompt": [{"role": "user", "content": content}], "images": images})
        return converted

    def trl_chat_template(self) -> str:
        """The chat template of trl's processor calls (`chat_template_kwargs`)."""
        prefix = added_prefix(self.processor.tokenizer)
        return PASSTHROUGH.format(prefix=json.dumps(prefix), length=len(prefix))

    def tokenize(self, prompts: Sequence[Any]) -> tuple[list[list[int]], list[Any] | None, dict[str, Any]]:
        """(prompt ids, images per prompt, processor tensors) for generation: the prompt text tokenized as it is
        (it holds every special token the template writes), each marker expanded by the processor."""
        texts = [prompt if isinstance(prompt, str) else prompt_text(prompt) for prompt in prompts]
        images = [[] if isinstance(prompt, str) else
                  [part["image"] for message in prompt for part in message["content"] if part["type"] == "image"]
                  for prompt in prompts]
        # per prompt: Gemma 3's processor matches a prompt's markers with its own images
        out = self.processor(text=texts, images=images if any(images) else None, add_special_tokens=False)
        fields = {key: value for key, value in out.items() if key not in ("input_ids", "attention_mask")}
        return out["input_ids"], [found or None for found in images] if any(images) else None, fields


def added_prefix(tokenizer: Any) -> str:
    """The text of the special tokens `tokenizer` puts before a text it encodes (Gemma's, Llama's BOS); "" for a
    tokenizer that adds none, or adds tokens after the text too."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a")["input_ids"]
    if len(full) <= len(plain) or full[len(full) - len(plain):] != plain:
        return ""
    return tokenizer.decode(full[:len(full) - len(plain)])


def prompt_text(prompt: Sequence[dict[str, Any]]) -> str:
    """The rendered text of a prompt `trl_rows` built, once trl has made its content blocks (what the rewards
    read as `prompts`)."""
    return "".join(part["text"] for message in prompt for part in message["content"] if part["type"] == "text")


def media_prompts(collator: MultimodalCollator | None) -> MediaPrompts | None:
    """The image prompts of a run whose rows kept their media (`PreparedData.collator` is set), else None."""
    if collator is None:
        return None
    encoder = collator.encoder
    plugin = encoder.plugin
    if "images" not in plugin.markers or not (plugin.fallback or plugin.name in PROCESSOR_EXPANDED):
        raise MediaError(f"online RL stages on `{plugin.name}` models are not supported: their image inputs are "
                         "more than the processor's expansion of the prompt text, which trl's GRPO/RLOO trainers "
                         "carry; train a Qwen2-VL-style model, or use `stage: dpo` with ranking rows")
    return MediaPrompts(encoder.processor, plugin.markers["images"], encoder.options)
