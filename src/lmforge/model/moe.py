"""Mixture-of-experts training: the router's load-balancing loss added to the training loss
(LLaMA-Factory's `moe_aux_loss_coef`), through the model config's own settings."""

from typing import Any

from lmforge.errors import ModelError

# The config attribute each model family reads its auxiliary-loss weight from (transformers' names).
COEF_ATTRIBUTES = ("router_aux_loss_coef", "aux_loss_alpha", "aux_loss_coef")


def add_router_loss(config: Any, coef: float) -> None:
    """Set the router loss weight to `coef` and have the model return its router logits, so its forward adds
    `coef x load-balancing loss` to the loss. Before the weights load: some models read the weight at init."""
    configs = [config] + ([config.get_text_config()] if config.get_text_config() is not config else [])
    touched = False
    for each in configs:
        attribute = next((name for name in COEF_ATTRIBUTES if hasattr(each, name)), None)
        if attribute is None:
            continue
        setattr(each, attribute, coef)
        if hasattr(each, "output_router_logits"):
            each.output_router_logits = True
        touched = True
    if not touched:
        raise ModelError(f"`moe_aux_loss_coef`: model_type `{config.model_type}` has no router auxiliary loss "
                         "(it is not a mixture-of-experts model transformers knows): remove the key")
