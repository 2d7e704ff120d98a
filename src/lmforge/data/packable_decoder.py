"""Whether a decoder keeps packed examples apart, decided from its config (no weights, no modeling code).

Bin-packed rows (`packing` for sft, multimodal rows) hold several examples one after another, with position
ids restarting at 0 for each; transformers turns those into a block-diagonal mask (or per-sequence attention),
which stops attention at an example's end. Two kinds of decoder layer are not attention over one example:

- layers that carry a state along the sequence (short convolutions, linear attention, Mamba / state-space,
  hybrids of them): the state at one example's last token runs into the next example's first. transformers'
  PyTorch paths ignore the boundaries (`cu_seq_lens_*`/`seq_idx`); its kernel wrappers refuse them without
  the CUDA packages (`hub_kernels`: "can't keep packed sequences apart"), so no CPU path keeps them apart;
- sparse attention that chooses keys over the whole row (DeepSeek Sparse Attention's indexer, DeepSeek-V4's
  compressed blocks): another example's tokens take places among the chosen keys.

The layer kinds are read from every style transformers 5 configs use: `layer_types` (LFM2, Qwen3.5 /
Qwen3-Next, MiniMax, Kimi-Linear, Jamba, Bamba, Granite-4 hybrid, Nemotron-H, Falcon-H1, Zamba, DeepSeek-V3.2,
GLM-MoE-DSA: all fill it), the older `layers_block_type` / `block_types` lists and Nemotron-H's
`hybrid_override_pattern` (which remote-code checkpoints may carry alone), and the model types that are
recurrent through and through without a per-layer list (RWKV, xLSTM).
"""

from typing import Any

from lmforge.errors import ConfigError

# decoder layer kinds whose state runs on from one token to the next (transformers 5 names Mamba / state-space
# layers `linear_attention` too: Bamba, Granite-4 hybrid, Jamba, Nemotron-H, Mamba-2)
STATEFUL_LAYERS = {"conv": "short-convolution", "linear_attention": "linear-attention (recurrent)",
                   "mamba": "Mamba", "recurrent": "recurrent", "hybrid": "hybrid attention + state-space",
                   "hybrid_sliding": "hybrid attention + state-space"}
# DeepSeek Sparse Attention (DeepSeek-V3.2, GLM-MoE-DSA, dots3-note): an indexer's top-k over the row
INDEXED_LAYER = "indexed_attention"
# sparse attention that chooses keys (or blocks of consecutive keys) over the whole row
WHOLE_ROW_LAYERS = {INDEXED_LAYER: "its sparse attention's indexer picks each token's top-k keys over the whole "
                                   "row (DeepSeek Sparse Attention)",
                    "compressed_sparse_attention": "its attention compresses blocks of consecutive keys and picks "
                                                   "the top-k blocks over the whole row (DeepSeek-V4)",
                    "heavily_compressed_attention": "its attention compresses blocks of consecutive keys over the "
                                                    "whole row (DeepSeek-V4)"}
# `hybrid_override_pattern` (Nemotron-H): one character per layer, "M" a Mamba-2 layer
PATTERN_KINDS = {"M": "mamba"}
# model types recurrent in every layer whose configs list no layer kinds
RECURRENT_MODEL_TYPES = {"rwkv": "recurrent", "xlstm": "recurrent"}


def decoder_config(model_config: Any) -> Any:
    """The decoder's own config (a multimodal model's text config)."""
    if hasattr(model_config, "get_text_config"):
        return model_config.get_text_config(decoder=True)
    return model_config


def decoder_layer_types(model_config: Any) -> list[str]:
    """The decoder's layer kinds (transformers' `layer_types` names), from whichever style its config uses;
    empty where it names none."""
    text = decoder_config(model_config)
    kinds = [*(getattr(text, "layer_types", None) or ()), *(getattr(text, "layers_block_type", None) or ()),
             *(getattr(text, "block_types", None) or ())]
    pattern = getattr(text, "hybrid_override_pattern", None)
    if isinstance(pattern, str):
        kinds += [PATTERN_KINDS[char] for char in pattern if char in PATTERN_KINDS]
    if kind := RECURRENT_MODEL_TYPES.get(getattr(text, "model_type", "")):
        kinds.append(kind)
    return list(dict.fromkeys(str(kind) for kind in kinds))


def mixing_reasons(model_config: Any) -> list[str]:
    """Why the decoder would mix bin-packed examples, one phrase per cause (`its decoder's ...`); empty when
    its attention alone (stopped at each example's end by the restarting positions) spans the row."""
    kinds = decoder_layer_types(model_config)
    reasons = []
    if stateful := [kind for kind in kinds if kind in STATEFUL_LAYERS]:
        names = " and ".join(dict.fromkeys(STATEFUL_LAYERS[kind] for kind in stateful))
        listed = ", ".join(f"`{kind}`" for kind in stateful)
        reasons.append(f"its decoder's {names} layers carry their state from the end of one packed example into "
                       f"the next (layer kinds {listed}; no position id or attention mask stops them)")
    reasons += [WHOLE_ROW_LAYERS[kind] + ", so another packed example's tokens take places its own would have"
                for kind in kinds if kind in WHOLE_ROW_LAYERS]
    return reasons


def check_packable_decoder(model_config: Any, key: str = "packing") -> None:
    """Refuse bin-packing (examples packed into rows with restarting positions; `key`: the config key that asks
    for it, `packing` or `padding_free`) for a decoder that would let one example's tokens change another's
    outputs; the message names the model type, the layers and the fix."""
    if not (reasons := mixing_reasons(model_config)):
        return
    model_type = getattr(decoder_config(model_config), "model_type", None) or "this"
    fix = (f"Set `{key}: false` (each example its own padded row)." if key != "packing" else
           "Set `packing: false` (each example its own padded row). For continued pretraining, `stage: pt` packs "
           "differently and works with this model: it concatenates documents into `cutoff_len` blocks that run "
           "across documents by design (as LLaMA-Factory's pt does), with no example boundaries to keep.")
    raise ConfigError(
        f"`{key}` cannot keep examples apart on `{model_type}` models: {'; '.join(reasons)}. Packed, each example "
        f"would be trained on what the examples before it in the row left behind. {fix}")
