"""`fused_lora`: each LoRA linear layer as one matmul with W + s*B*A gives peft's outputs and gradients."""

import pytest
import torch
from peft.tuners.lora import Linear as LoraLinear

from lmforge.model import fused_lora
from lmforge.model.fused_lora import fold_lora_layers
from tests.model.test_lora_options import lora_model


def _randomize_adapters(model):
    """peft starts B at zero (the adapter adds nothing); give A and B values so the adapter path counts."""
    generator = torch.Generator().manual_seed(0)
    for name, param in model.named_parameters():
        if "lora_" in name:
            param.data = torch.randn(param.shape, generator=generator) * 0.1


def _loss_and_grads(model, input_ids, autocast: bool = False):
    """Under autocast the forward pass only, as the Trainer runs it (backward outside the autocast region)."""
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = model(input_ids=input_ids, labels=input_ids, use_cache=False).loss
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("family", ["llama", "qwen2"])  # qwen2: q/k/v carry a (frozen) bias
def test_folded_layers_give_peft_loss_and_gradients(tiny_family, family):
    fused, _ = lora_model(tiny_family(family), lora_rank=4, lora_alpha=16)
    plain, _ = lora_model(tiny_family(family), lora_rank=4, lora_alpha=16, fused_lora=False)
    for model in (fused, plain):
        _randomize_adapters(model)
    layers = [m for m in fused.modules() if isinstance(m, LoraLinear)]
    assert layers and all("forward" in vars(m) for m in layers)  # every adapted linear layer is folded
    assert not any("forward" in vars(m) for m in plain.modules() if isinstance(m, LoraLinear))
    input_ids = torch.randint(3, fused.config.vocab_size, (2, 48), generator=torch.Generator().manual_seed(1))
    fused_loss, fused_grads = _loss_and_grads(fused, input_ids)
    plain_loss, plain_grads = _loss_and_grads(plain, input_ids)
    assert fused_loss == pytest.approx(plain_loss, rel=1e-5)
    assert fused_grads.keys() == plain_grads.keys() and fused_grads
    for name, grad in fused_grads.items():
        torch.testing.assert_close(grad, plain_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_unfoldable_calls_and_layers_run_peft_forward(tiny_family, monkeypatch):
    model, _ = lora_model(tiny_family("llama"), lora_rank=4)
    _randomize_adapters(model)
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    folded = []
    fold = fused_lora._FoldedLoraMatmul.apply
    monkeypatch.setattr(fused_lora._FoldedLoraMatmul, "apply", lambda *args: folded.append(1) or fold(*args))
    hidden = layer.in_features
    layer(torch.randn(1, 64, hidden))
    assert folded == [1]  # 64 tokens >= 16 x rank 4
    layer(torch.randn(1, 3, hidden))  # a generation step: folding would cost more than the matmul
    with model.disable_adapter():  # the DPO reference model: the base alone
        expected = layer.base_layer(x := torch.randn(1, 64, hidden))
        torch.testing.assert_close(layer(x), expected)
    assert folded == [1]

    dropout, _ = lora_model(tiny_family("llama"), lora_rank=4, lora_dropout=0.1)  # a different adapter path
    dora, _ = lora_model(tiny_family("llama"), lora_rank=4, use_dora=True)
    assert fold_lora_layers(dropout) == 0 and fold_lora_layers(dora) == 0


@pytest.mark.parametrize("cpu_setup", [False, True], ids=["alone", "with-the-runners-cpu-setup"])
@pytest.mark.parametrize("alpha", [8, 12])  # scale 2: B's weights scaled; 3: peft's own forward
def test_under_autocast_the_same_numbers_as_peft_bit_for_bit(tiny_family, alpha, cpu_setup):
    """With the runner's CPU setup too: shared input casts (the adapter's input is the copy q/k/v share), kept
    weight copies, peft's input casts off."""
    from lmforge.model.recast_weights import keep_frozen_weight_copies
    from lmforge.model.shared_casts import adapter_inputs_as_they_come, share_input_casts

    # the runner loads a model it trains under autocast without the oneDNN route (`fp32_products=False`), whose
    # forward would stand where the kept copies go; `auto` could pick it here on a loaded machine
    route = {"cpu_matmul": "torch"} if cpu_setup else {}
    fused, _ = lora_model(tiny_family("llama"), lora_rank=4, lora_alpha=alpha, **route)
    plain, _ = lora_model(tiny_family("llama"), lora_rank=4, lora_alpha=alpha, fused_lora=False, **route)
    for model in (fused, plain):
        _randomize_adapters(model)
    for model in (fused, plain) if cpu_setup else ():
        assert share_input_casts(model) > 0 and keep_frozen_weight_copies(model) > 0
        assert adapter_inputs_as_they_come(model) > 0
    input_ids = torch.randint(3, fused.config.vocab_size, (2, 48), generator=torch.Generator().manual_seed(1))
    fused_loss, fused_grads = _loss_and_grads(fused, input_ids, autocast=True)
    plain_loss, plain_grads = _loss_and_grads(plain, input_ids, autocast=True)
    assert fused_loss == plain_loss
    assert fused_grads.keys() == plain_grads.keys() and fused_grads
    for name, grad in fused_grads.items():
        assert torch.equal(grad, plain_grads[name]), name


def test_on_the_real_model_with_the_runners_cpu_setup_the_same_numbers_bit_for_bit(smollm2_path):
    """SmolLM2-135M, the quickstart's LoRA rank and scale: fused and peft's forward under the runner's CPU setup
    give the same loss and gradients bit for bit."""
    from lmforge.model.recast_weights import keep_frozen_weight_copies
    from lmforge.model.shared_casts import adapter_inputs_as_they_come, share_input_casts

    models = [lora_model(smollm2_path, lora_rank=16, lora_alpha=32, fused_lora=fused, cpu_matmul="torch")[0]
              for fused in (True, False)]  # as the runner loads it for autocast (no oneDNN route)
    for model in models:
        _randomize_adapters(model)  # the same adapters in both (and B not zero)
        share_input_casts(model)
        keep_frozen_weight_copies(model)
        adapter_inputs_as_they_come(model)
    input_ids = torch.randint(3, 40000, (2, 64), generator=torch.Generator().manual_seed(1))
    (fused_loss, fused_grads), (plain_loss, plain_grads) = (_loss_and_grads(m, input_ids, autocast=True)
                                                            for m in models)
    assert fused_loss == plain_loss and fused_grads.keys() == plain_grads.keys()
    assert all(torch.equal(grad, plain_grads[name]) for name, grad in fused_grads.items())
