"""The adapters of an export merged into its base, the last one only after the reference logits are taken.

An export is checked against its source: the base plus its adapters as training left them. So every
adapter but the last merges at once, the last stays a PEFT wrapper (unmerged) while the probe batch's
reference logits are computed, and merges after. A merge that moved the logits then fails the parity check.
"""

from typing import Any

from peft import PeftModel

from lmforge.model.adapters import merge_adapters


def source_model(base: Any, adapters: list[str]) -> Any:
    """`base` with every adapter but the last merged in and the last attached unmerged."""
    model = merge_adapters(base, adapters[:-1])
    if adapters:
        model = PeftModel.from_pretrained(model, adapters[-1])
    return model


def merge_last(model: Any) -> Any:
    """The plain model to save: `source_model`'s unmerged last adapter, if any, merged in."""
    return model.merge_and_unload() if isinstance(model, PeftModel) else model
