"""A tiny family's checkpoint without weights: config.json and the tokenizer (or processor) files.

What the checks before loading read (model kind, template fit) is exactly this, so tests of those checks
save it in milliseconds instead of building a model.
"""

from pathlib import Path
from typing import Any


def save_tiny_checkpoint_files(out_dir: str | Path, family: str, *, vlm: bool = False,
                               extra_special_tokens: tuple[str, ...] = (), chat_template: str | None = None) -> Path:
    """Write config.json and the tokenizer of tiny `family` (a `TINY_FAMILIES` name, or with `vlm` a
    `TINY_VLM_FAMILIES` one, processor included) to `out_dir`; `extra_special_tokens` are added to the tokenizer."""
    from lmforge.testing.tiny import TINY_FAMILIES, build_tiny_tokenizer
    from lmforge.testing.tiny_vlm import TINY_VLM_FAMILIES

    out_dir = Path(out_dir)
    saved: Any
    if vlm:
        config, saved = TINY_VLM_FAMILIES[family]()
        tokenizer = saved.tokenizer
    else:
        tokenizer = saved = build_tiny_tokenizer(chat_template)
        config, _ = TINY_FAMILIES[family](tokenizer)
    if extra_special_tokens:
        tokenizer.add_special_tokens({"additional_special_tokens": list(extra_special_tokens)},
                                     replace_extra_special_tokens=False)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    config.save_pretrained(out_dir)
    saved.save_pretrained(out_dir)
    return out_dir
