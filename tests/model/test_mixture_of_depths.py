"""Mixture-of-Depths (`mixture_of_depths`): a routed layer against the plain one, top-k routing, the
router's gradient, one instance only, and the refusals before any weight loads."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from lmforge.errors import ConfigError, LmforgeError
from lmforge.model.fit import check_model_fit
from lmforge.model.mixture_of_depths import route_layer, use_mixture_of_depths
from lmforge.train.stages import configured_stage
from tests.model.conftest import config_for


def _layer_inputs(model, ids, attention_mask=None):
    """What LlamaModel hands layer 1: its hidden states and keyword arguments, captured by a forward hook."""
    seen = {}

    def keep(module, args, kwargs):
        seen.update(kwargs, hidden=args[0])

    handle = model.model.layers[1].register_forward_pre_hook(keep, with_kwargs=True)
    with torch.no_grad():
        model(input_ids=ids, attention_mask=attention_mask, use_cache=False)
    handle.remove()
    return seen.pop("hidden"), seen


@pytest.fixture
def llama(tiny_family):
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(tiny_family("llama"), dtype=torch.float32).eval()


@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_full_capacity_with_weight_one_is_the_plain_layer(tiny_family, family, padded):
    llama = AutoModelForCausalLM.from_pretrained(tiny_family(family), dtype=torch.float32).eval()
    ids = torch.randint(0, 100, (2, 12))
    mask = torch.ones_like(ids)
    if padded:
        mask[0, :3] = 0  # left padding: a 4-D mask reaches the layer
    hidden, kwargs = _layer_inputs(llama, ids, mask)
    layer = llama.model.layers[1]
    with torch.no_grad():
        plain = layer(hidden, **kwargs)
        route_layer(layer, llama.config.hidden_size, capacity=1.0)
        layer.mod_router.weight.zero_()  # every router weight exactly 1, from the bias
        routed = layer(hidden, **kwargs)
    keep = mask.bool()
    torch.testing.assert_close(routed[keep], plain[keep], rtol=1e-5, atol=1e-5)


def test_only_the_top_k_tokens_change_and_the_router_learns(llama):
    ids = torch.randint(0, 100, (2, 16))
    hidden, kwargs = _layer_inputs(llama, ids)
    layer = route_layer(llama.model.layers[1], llama.config.hidden_size)
    layer.train()
    hidden = hidden.clone().requires_grad_()
    out = layer(hidden, **kwargs)
    changed = (out - hidden).abs().sum(-1) > 0
    assert changed.sum(1).tolist() == [2, 2]  # 12.5% of 16
    weights = layer.mod_router(hidden).squeeze(-1)
    assert torch.equal(changed, weights >= weights.topk(2, dim=1).values[:, -1:])
    torch.testing.assert_close(out[~changed], hidden[~changed], rtol=0, atol=0)
    # a routed token: the plain layer over the chosen tokens alone, at their own positions, its change scaled
    chosen = changed.nonzero()[:, 1].view(2, 2)
    rows = torch.arange(2)[:, None]
    tokens = hidden[rows, chosen]
    plain = type(layer).__bases__[1].forward(layer, tokens, position_ids=chosen,
                                             position_embeddings=llama.model.rotary_emb(tokens, chosen))
    expected = tokens + weights[rows, chosen].unsqueeze(-1) * (plain - tokens)
    torch.testing.assert_close(out[rows, chosen], expected)
    out.sum().backward()
    assert layer.mod_router.weight.grad.abs().sum() > 0 and layer.mod_router.bias.grad.abs() > 0


def test_routing_applies_to_one_instance_and_is_recorded(llama, tiny_family):
    routed = use_mixture_of_depths(llama, "convert", str(tiny_family("llama")))
    assert routed == list(range(1, llama.config.num_hidden_layers, 2))
    assert llama.config.mixture_of_depths == {"layers": routed, "capacity": 0.125}
    other = AutoModelForCausalLM.from_pretrained(tiny_family("llama"))
    assert not hasattr(other.model.layers[1], "mod_router")
    names = [name for name, _ in llama.named_parameters() if "mod_router" in name]
    assert names[0] == "model.layers.1.mod_router.weight" and "model.layers.1.self_attn.q_proj.weight" in dict(
        llama.named_parameters())
    llama.train()
    loss = llama(input_ids=torch.randint(0, 100, (2, 16)), labels=torch.randint(0, 100, (2, 16)),
                 use_cache=False).loss
    assert torch.isfinite(loss)


@pytest.mark.parametrize(("keys", "message"), [
    ({"finetuning_type": "lora"}, "set `finetuning_type: full`"),
    ({"attn_implementation": "flash_attention_2"}, "`attn_implementation: sdpa`"),
])
def test_method_and_attention_are_refused_before_weights_load(tiny_family, keys, message):
    cfg = config_for(tiny_family("llama"), mixture_of_depths="convert", **{"finetuning_type": "full", **keys})
    with pytest.raises(LmforgeError, match=message):
        check_model_fit(cfg.model, cfg.finetuning, None, "check")


@pytest.mark.parametrize(("keys", "message"), [
    ({"packing": True}, "set `packing: false`"),
    ({"stage": "pt"}, "set `packing: false`"),  # pt packs unless told not to
    ({"stage": "dpo"}, r"trains the causal-LM stages \(pt, sft\), not `dpo`"),
    ({"do_predict": True, "eval_dataset": "identity"}, "remove `do_predict`"),
])
def test_stage_rules(tiny_family, keys, message):
    cfg = config_for(tiny_family("llama"), mixture_of_depths="convert", finetuning_type="full", **keys)
    with pytest.raises(ConfigError, match=message):
        configured_stage(cfg)


def test_load_needs_a_converted_checkpoint_and_other_models_are_refused(tiny_family):
    cfg = config_for(tiny_family("llama"), mixture_of_depths="load", finetuning_type="full")
    with pytest.raises(LmforgeError, match="needs a checkpoint trained by lmforge with"):
        check_model_fit(cfg.model, cfg.finetuning, None, "check")
    cfg = config_for(tiny_family("gemma3_text"), mixture_of_depths="convert", finetuning_type="full")
    with pytest.raises(LmforgeError, match="routes the decoder layers of llama"):
        check_model_fit(cfg.model, cfg.finetuning, None, "check")
