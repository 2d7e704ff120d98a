"""Whether packed rows of a multimodal model keep their examples apart, decided from what the model does.

A packed row holds several examples one after another, with position ids restarting at 0 for each; the
vision/audio towers see the same items as in a padded batch, so only what the decoder does across a row can
merge examples. Three things do, read from the model's config and its transformers module (no weights):

- 3-D M-RoPE: a model whose module computes its positions from the media grids over the whole row
  (`get_rope_index`, as Qwen2-VL, Qwen3-VL, GLM-4.xV, Qwen-Omni do) ignores the restarting 1-D positions,
  unless the plugin computes each example's 3-D positions itself (`MMPlugin.computes_positions`);
- decoder layers that carry a state along the sequence (short convolutions, linear attention / Mamba), which
  no position id or attention mask stops at an example's end (LFM2-VL, LFM3-VL, Qwen3.5, MiniCPM-V 4.6),
  and sparse attention whose indexer picks each token's top-k keys over the whole row (dots3-note): the
  decoder's own facts, shared with text packing (`lmforge.data.packable_decoder`);
- what the processor shows: token types the model builds a bidirectional media block from, and the
  hand-written plugins' own reasons (`MMPlugin.no_packing_reason`).

Everything else attends within each example through the restarting positions (transformers' packed-sequence
masks), which tests/multimodal/test_packing.py checks logit by logit against the same examples padded.
"""

import sys
from typing import Any

from lmforge.data.multimodal.plugin import MMPlugin
from lmforge.data.packable_decoder import decoder_config, mixing_reasons

# the auto classes lmforge loads multimodal models with (model/kind.py)
AUTO_MAPPINGS = ("MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING", "MODEL_FOR_MULTIMODAL_LM_MAPPING")


def packing_refusal(plugin: MMPlugin, model_config: Any) -> str | None:
    """Why packed rows of this model would not keep their examples apart (all the reasons, joined), or None
    when they do. `model_config`: the model's config (read before any weights load)."""
    reasons = [plugin.no_packing_reason] if plugin.no_packing_reason else []
    rope = mrope_function(model_config)
    if rope:  # the token types, if any, are what the positions are computed from
        if not plugin.computes_positions:
            reasons.append(f"its model computes 3-D M-RoPE positions from the media grids over each whole row "
                           f"(`{rope}`), not per packed example")
    elif plugin.token_type_key and not plugin.token_types_unread:
        reasons.append(f"its model reads `{plugin.token_type_key}` to let each media item's tokens attend to one "
                       "another (a bidirectional block in the causal mask), a mask that does not keep packed "
                       "examples apart")
    reasons += mixing_reasons(model_config)  # what the decoder itself does across a row (packable_decoder.py)
    return "; ".join(reasons) or None


def mrope_function(model_config: Any) -> str | None:
    """The name of the function the model derives its 3-D positions with (`get_rope_index`), found in the
    transformers module of the class that loads it; `mrope_section` in its rotary parameters when the class
    is not one transformers maps (remote code)."""
    model_class = _model_class(model_config)
    if model_class is not None:
        module = sys.modules[model_class.__module__]
        own = [value for value in vars(module).values()
               if isinstance(value, type) and value.__module__ == module.__name__]
        return next((f"{cls.__name__}.get_rope_index" for cls in own if "get_rope_index" in vars(cls)), None)
    text = decoder_config(model_config)
    rope = getattr(text, "rope_parameters", None) or getattr(text, "rope_scaling", None) or {}
    return "mrope_section" if isinstance(rope, dict) and "mrope_section" in rope else None


def _model_class(model_config: Any) -> type | None:
    from transformers.models.auto import modeling_auto

    for name in AUTO_MAPPINGS:
        mapping = getattr(modeling_auto, name, None)
        if mapping is not None and type(model_config) in mapping:
            return mapping[type(model_config)]
    return None
