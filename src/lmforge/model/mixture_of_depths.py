"""Mixture-of-Depths (Raposo et al. 2024; LLaMA-Factory's `mixture_of_depths`), for one model instance.

Every other decoder layer (1, 3, 5, ...; as the MoD package LLaMA-Factory uses) gets a router, a linear
map hidden -> 1 computed in float32. Per sequence the `CAPACITY` share of tokens (12.5%, at least one) with
the largest router weights goes through the layer: gathered in their order, with their own positions and
rotary embeddings, attending causally among themselves under the model's own mask (padding stays masked);
the layer's change of each such token is scaled by its router weight, as in the paper
(x + r * (layer(x) - x)), and scattered back. Every other token skips the layer unchanged.

Differences from the MoD package, on purpose: it multiplies the layer's whole output (residual included)
by the router weight and keeps one token fewer than k (a strict `>` against the k-th weight); it starts the
capacity at 100% and anneals it towards 12.5% over its first 1000 forward calls (a count not kept in
checkpoints); its routers start from PyTorch's default initialisation, so its first steps scale the
routed tokens by random numbers near 0. Here a router starts with bias 1 and weights N(0, 0.001²): every
routed token starts at the dense model's output, and the small spread orders the top-k.

The layer keeps its own class and parameter names: its class is swapped, on this instance only, for a
subclass whose `forward` routes and then calls the layer's own. So the saved model is the base checkpoint
plus `model.layers.N.mod_router.*` tensors, and config.json records `mixture_of_depths` (the routed
layers and capacity), which `mixture_of_depths: load` reads to route the same layers with the saved routers.

Training and evaluation only: the top-k runs over the whole sequence, which a decoder generating token by
token with a cache does not have (the paper trains a separate causal predictor for that); chat, export and
generation refuse a MoD checkpoint (`check_no_mixture_of_depths`).
"""

from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from torch import nn

from lmforge.errors import ModelError

CAPACITY = 0.125
ROUTER = "mod_router"
MARKER = "mixture_of_depths"  # the config.json entry of a trained MoD checkpoint
# Decoder layers with transformers 5's signature (hidden, attention_mask, position_ids, cache, use_cache,
# position_embeddings) returning the hidden states, checked with this wrapper.
SUPPORTED = ("llama", "mistral", "qwen2", "qwen3")


class RoutedLayer(nn.Module):
    """Mixed into a decoder layer's own class (`route_layer`): top-k routing around its forward."""

    mod_router: nn.Linear
    mod_capacity: float

    def forward(self, hidden_states: torch.Tensor, attention_mask: Any = None,
                position_ids: torch.Tensor | None = None, cache: Any = None, use_cache: bool | None = False,
                position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
                **kwargs: Any) -> torch.Tensor:
        if cache is not None or use_cache:
            raise ModelError("a Mixture-of-Depths layer routes over the whole sequence and cannot decode with "
                             "a cache: MoD models train and evaluate only")
        if any(key.startswith("cu_seq_lens") for key in kwargs):
            raise ModelError("Mixture-of-Depths does not route packed rows: set `packing: false`")
        batch, length, width = hidden_states.shape
        with torch.autocast(hidden_states.device.type, enabled=False):  # float32 even under bf16 autocast
            weights = self.mod_router(hidden_states.to(self.mod_router.weight.dtype)).squeeze(-1)  # [B, L]
        k = max(1, int(self.mod_capacity * length))
        chosen = weights.topk(k, dim=1).indices.sort(dim=1).values  # [B, k], in sequence order
        rows = torch.arange(batch, device=chosen.device)[:, None]
        tokens = hidden_states[rows, chosen]
        if position_ids is None:
            position_ids = torch.arange(length, device=chosen.device)[None]
        cos, sin = position_embeddings  # [1 or B, L, head_dim]
        out = super().forward(tokens, attention_mask=_chosen_mask(attention_mask, rows, chosen),
                              position_ids=position_ids.expand(batch, -1)[rows, chosen], cache=None,
                              use_cache=False,
                              position_embeddings=(cos.expand(batch, -1, -1)[rows, chosen],
                                                   sin.expand(batch, -1, -1)[rows, chosen]), **kwargs)
        scale = weights[rows, chosen].unsqueeze(-1).to(out.dtype)
        routed = tokens + scale * (out - tokens)
        return hidden_states.scatter(1, chosen.unsqueeze(-1).expand(-1, -1, width), routed)


def _chosen_mask(mask: Any, rows: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor | None:
    """The model's mask between the chosen tokens. None stays None (SDPA's causal kernel: the chosen tokens
    keep their order). Each token may see itself, so a chosen padding token, which the mask lets see nothing,
    gets no NaN (its output is never used)."""
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor) or mask.dim() != 4:
        raise ModelError("Mixture-of-Depths needs the model's attention mask as a tensor: set "
                         "`attn_implementation: sdpa` or `eager`")
    picked = mask[:, 0].expand(rows.shape[0], -1, -1)[rows[:, :, None], chosen[:, :, None], chosen[:, None, :]]
    itself = torch.eye(chosen.shape[1], dtype=torch.bool, device=picked.device)
    picked = picked | itself if picked.dtype == torch.bool else picked.masked_fill(itself, 0.0)
    return picked.unsqueeze(1)


_ROUTED_CLASSES: dict[type, type] = {}


def route_layer(layer: nn.Module, hidden_size: int, capacity: float = CAPACITY) -> nn.Module:
    """Give `layer` (this instance only) a router and the routed forward; its parameters keep their names."""
    cls = type(layer)
    if cls not in _ROUTED_CLASSES:
        _ROUTED_CLASSES[cls] = type(f"MoD{cls.__name__}", (RoutedLayer, cls), {})
    device = next(layer.parameters()).device
    router = nn.Linear(hidden_size, 1, device=device, dtype=torch.float32)
    with torch.no_grad():
        router.weight.normal_(0.0, 1e-3)
        router.bias.fill_(1.0)
    layer.__class__ = _ROUTED_CLASSES[cls]
    layer.mod_router = router
    layer.mod_capacity = capacity
    return layer


def _decoder_layers(model: nn.Module) -> nn.ModuleList:
    return model.get_decoder().layers


def check_mixture_of_depths_fits(config: Any, mode: str | None, where: str, *, method: str,
                                 attention: str) -> None:
    """Before any weight loads: full fine-tuning of a supported decoder-only model under a tensor attention
    mask; `load` needs a MoD checkpoint, `convert` (and a run without `mixture_of_depths`) a dense one."""
    if mode is None:
        if getattr(config, MARKER, None):
            raise ModelError(f"{where} was trained with Mixture-of-Depths: set `mixture_of_depths: load` to train "
                             "it with its routers (without them its routed layers would run dense)")
        return
    if method != "full":  # LoRA would freeze the layers the routers scale; LLaMA-Factory's example is full
        raise ModelError(f"`mixture_of_depths: {mode}` trains the routers with the whole model: set "
                         f"`finetuning_type: full` (got `{method}`)")
    if attention not in ("auto", "sdpa", "eager"):
        raise ModelError(f"`mixture_of_depths` routes under SDPA or eager attention, not `{attention}`: set "
                         "`attn_implementation: sdpa` (or auto)")
    if config.model_type not in SUPPORTED:
        raise ModelError(f"{where}: `mixture_of_depths` routes the decoder layers of {', '.join(SUPPORTED)} "
                         f"models, and this is `{config.model_type}`: remove `mixture_of_depths`")
    trained = getattr(config, MARKER, None)
    if mode == "load" and not trained:
        raise ModelError(f"{where}: `mixture_of_depths: load` needs a checkpoint trained by lmforge with "
                         "`mixture_of_depths: convert` (its config.json has `mixture_of_depths`): use `convert` "
                         "to add routers to this dense model")
    if mode == "convert" and trained:
        raise ModelError(f"{where}: this checkpoint already has Mixture-of-Depths routers: use "
                         "`mixture_of_depths: load` to train it further")


def check_no_mixture_of_depths(config: Any, where: str) -> None:
    """Chat, evaluation and export: a MoD checkpoint runs only under its routing, which needs the whole
    sequence, so generating from it is refused rather than run without the routers."""
    if getattr(config, MARKER, None):
        raise ModelError(f"{where} was trained with Mixture-of-Depths: lmforge trains MoD models and "
                         "evaluates them while training (`mixture_of_depths: load`) but does not generate with or "
                         "export them (the top-k routing looks at the whole sequence, which token-by-token decoding "
                         "does not have); train without `mixture_of_depths` for a model to chat with or export")


def use_mixture_of_depths(model: nn.Module, mode: str, path: str) -> list[int]:
    """Route every other decoder layer of `model` (`convert`: new routers; `load`: the layers and routers saved
    in `path` by a `convert` run). Records the routing in `model.config`; returns the routed layers."""
    config = model.config
    layers = _decoder_layers(model)
    saved = getattr(config, MARKER, None)
    chosen = saved["layers"] if mode == "load" else list(range(1, len(layers), 2))
    capacity = saved["capacity"] if mode == "load" else CAPACITY
    for index in chosen:
        route_layer(layers[index], config.get_text_config().hidden_size, capacity)
    setattr(config, MARKER, {"layers": chosen, "capacity": capacity})
    if mode == "load":
        _load_routers(model, Path(path))
    return chosen


def _load_routers(model: nn.Module, path: Path) -> None:
    """The `mod_router` tensors of the checkpoint's safetensors files (a plain load skipped them)."""
    wanted = {name: parameter for name, parameter in model.named_parameters() if f".{ROUTER}." in name}
    found: set[str] = set()
    for file in sorted(path.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as weights:
            for name in weights.keys():  # noqa: SIM118 (safe_open has no __iter__)
                if name in wanted:
                    with torch.no_grad():
                        wanted[name].copy_(weights.get_tensor(name))
                    found.add(name)
    if missing := sorted(set(wanted) - found):
        raise ModelError(f"{path}: the checkpoint lacks the Mixture-of-Depths routers {missing[:3]}: train it "
                         "again with `mixture_of_depths: convert`")
