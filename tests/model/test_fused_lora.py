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


def _with_the_runners_cpu_setup(model):
    """Shared input casts (the adapter's input is the copy q/k/v share), kept weight copies, peft's input casts
    off: what the runner does to a model it trains under autocast on short micro-batches."""
    from lmforge.model.recast_weights import keep_frozen_weight_copies
    from lmforge.model.shared_casts import adapter_inputs_as_they_come, share_input_casts

    assert share_input_casts(model) > 0 and keep_frozen_weight_copies(model) > 0
    assert adapter_inputs_as_they_come(model) > 0
    return model


def _fused_and_plain(source, cpu_setup: bool, **options):
    # the runner loads a model it trains under autocast without the oneDNN route (`fp32_products=False`), whose
    # forward would stand where the kept copies go; `auto` picks it by timing, so on a loaded machine (three test
    # workers on two cores) it did, and the layers kept no bf16 copies
    models = [lora_model(source, fused_lora=fused, cpu_matmul="torch", **options)[0] for fused in (True, False)]
    for model in models:
        _randomize_adapters(model)  # the same adapters in both (and B not zero)
        if cpu_setup:
            _with_the_runners_cpu_setup(model)
    return models


@pytest.mark.parametrize("cpu_setup", [False, True], ids=["plain", "with-the-runners-cpu-setup"])
def test_under_autocast_a_scale_not_a_power_of_two_runs_peft_bit_for_bit(tiny_family, cpu_setup):
    fused, plain = _fused_and_plain(tiny_family("llama"), cpu_setup, lora_rank=4, lora_alpha=12)  # scale 3
    input_ids = torch.randint(3, fused.config.vocab_size, (2, 48), generator=torch.Generator().manual_seed(1))
    fused_loss, fused_grads = _loss_and_grads(fused, input_ids, autocast=True)
    plain_loss, plain_grads = _loss_and_grads(plain, input_ids, autocast=True)
    assert fused_loss == plain_loss
    assert fused_grads.keys() == plain_grads.keys() and fused_grads
    for name, grad in fused_grads.items():
        assert torch.equal(grad, plain_grads[name]), name


def test_under_autocast_a_power_of_two_scale_adds_the_adapter_product_into_the_base_output(tiny_family):
    """Scale 2: B's weights scaled, and the product added by the matmul into the base layer's output (rounded to
    bf16 once where peft rounds the product and the sum), on every projection of every layer."""
    fused, plain = _fused_and_plain(tiny_family("llama"), False, lora_rank=4, lora_alpha=8)
    added = fused_lora._added_adapter_product
    calls = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fused_lora, "_added_adapter_product", lambda *args: calls.append(1) or added(*args))
        input_ids = torch.randint(3, fused.config.vocab_size, (2, 48), generator=torch.Generator().manual_seed(1))
        (fused_loss, fused_grads), (plain_loss, plain_grads) = (_loss_and_grads(m, input_ids, autocast=True)
                                                                for m in (fused, plain))
    assert len(calls) == 7 * len(fused.base_model.model.model.layers)
    _, float32_grads = _loss_and_grads(plain, input_ids)
    assert fused_loss == pytest.approx(plain_loss, rel=2**-8) and fused_grads.keys() == plain_grads.keys()
    # as close to the float32 gradients as peft's under autocast (0.94x here)
    assert _gradient_error(fused_grads, float32_grads) < 1.1 * _gradient_error(plain_grads, float32_grads)


@pytest.mark.parametrize("stored", ["bf16", "float32-recast"])
def test_over_frozen_base_weights_one_product_gives_the_layer_input_its_gradient(tiny_family, stored):
    """Base weights stored in bf16 (values bf16 holds exactly) or recast for each pass, as the runner does, with its
    shared input casts: the adapter's product is added into the base product, and its input gradient into the
    base's, inside one function per layer; the loss within a bf16 rounding of peft's, gradients as close to the
    float32 ones."""
    from lmforge.model.frozen_linears import keep_frozen_linears_in_bf16
    from lmforge.model.recast_weights import recast_weights_in_backward
    from lmforge.model.shared_casts import adapter_inputs_as_they_come, share_input_casts

    fused, plain = _fused_and_plain(tiny_family("llama"), False, lora_rank=4, lora_alpha=8)
    if stored == "bf16":
        for model in (fused, plain):
            for module in model.modules():
                if isinstance(module, LoraLinear):
                    module.base_layer.weight.data = module.base_layer.weight.data.bfloat16().float()
    layers = len(fused.base_model.model.model.layers)
    keep = keep_frozen_linears_in_bf16 if stored == "bf16" else recast_weights_in_backward
    assert keep(fused) >= 7 * layers
    assert share_input_casts(fused) > 0 and adapter_inputs_as_they_come(fused) > 0
    product = fused_lora._AdapterProduct.apply
    calls = []
    input_ids = torch.randint(3, fused.config.vocab_size, (2, 48), generator=torch.Generator().manual_seed(1))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fused_lora._AdapterProduct, "apply", lambda *args: calls.append(1) or product(*args))
        fused_loss, fused_grads = _loss_and_grads(fused, input_ids, autocast=True)
    assert len(calls) == 7 * layers
    plain_loss, plain_grads = _loss_and_grads(plain, input_ids, autocast=True)
    _, float32_grads = _loss_and_grads(plain, input_ids)
    assert fused_loss == pytest.approx(plain_loss, rel=2**-8) and fused_grads.keys() == plain_grads.keys()
    assert _gradient_error(fused_grads, float32_grads) < 1.1 * _gradient_error(plain_grads, float32_grads)


def _gradient_error(grads, reference):
    return sum(float((grad.double() - reference[name].double()).square().sum()) for name, grad in grads.items())


def _close_to_peft(fused, plain, input_ids):
    """Against peft's path under autocast: the loss within a bf16 rounding, and gradients that differ from peft's
    less than autocast's own differ from the float32 ones, and about as close to those (the products sum in
    another order: neither rounding is the more exact)."""
    (fused_loss, fused_grads), (plain_loss, plain_grads) = (_loss_and_grads(m, input_ids, autocast=True)
                                                            for m in (fused, plain))
    _, float32_grads = _loss_and_grads(plain, input_ids)
    assert fused_loss == pytest.approx(plain_loss, rel=2**-8) and fused_grads.keys() == plain_grads.keys()
    autocast_error = _gradient_error(plain_grads, float32_grads)
    assert _gradient_error(fused_grads, plain_grads) < 0.5 * autocast_error
    assert _gradient_error(fused_grads, float32_grads) < 1.25 * autocast_error


def test_with_kept_weight_copies_lora_a_comes_out_of_the_base_product(tiny_family):
    fused, plain = _fused_and_plain(tiny_family("llama"), cpu_setup=True, lora_rank=4, lora_alpha=8)
    stacked = fused_lora._StackedAdapterProduct.apply
    calls = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fused_lora._StackedAdapterProduct, "apply", lambda *args: calls.append(1) or stacked(*args))
        input_ids = torch.randint(3, fused.config.vocab_size, (2, 48), generator=torch.Generator().manual_seed(1))
        last = len(fused.base_model.model.model.layers) - 1
        _close_to_peft(fused, plain, input_ids)
    assert len(calls) == 7 * (last + 1)  # every projection of every layer


def test_stacked_adapters_follow_the_optimizer_and_share_the_kept_copy(tiny_family):
    """Fused AdamW updates A in place without moving its version counter: the next forward still reads the new A.
    The stacked rows are the kept copy's own tensor (no second copy of the weight), also for the base alone."""
    fused, plain = _fused_and_plain(tiny_family("llama"), cpu_setup=True, lora_rank=4, lora_alpha=8)
    input_ids = torch.randint(3, fused.config.vocab_size, (2, 48), generator=torch.Generator().manual_seed(1))
    optimizer = torch.optim.AdamW([p for p in fused.parameters() if p.requires_grad], lr=0.1, fused=True)
    _loss_and_grads(fused, input_ids, autocast=True)
    layer = fused.base_model.model.model.layers[0].self_attn.q_proj
    version = layer.lora_A["default"].weight._version
    optimizer.step()
    assert layer.lora_A["default"].weight._version == version  # why the copy is written on every call
    plain.load_state_dict(fused.state_dict())  # peft's path with the updated adapters: the same loss
    fused_loss, plain_loss = (_loss_and_grads(model, input_ids, autocast=True)[0] for model in (fused, plain))
    assert fused_loss == pytest.approx(plain_loss, rel=2**-8)
    _, copy, stacked = vars(layer.base_layer)["_lmforge_kept_copy"]
    assert copy.untyped_storage().data_ptr() == stacked.untyped_storage().data_ptr()
    assert torch.equal(stacked[copy.shape[0]:], layer.lora_A["default"].weight.to(torch.bfloat16))
    with fused.disable_adapter(), torch.autocast("cpu", dtype=torch.bfloat16):  # the DPO reference: base alone
        fused(input_ids=input_ids)
    assert vars(layer.base_layer)["_lmforge_kept_copy"][2] is stacked


def test_on_the_real_model_with_the_runners_cpu_setup(smollm2_path):
    """SmolLM2-135M, the quickstart's LoRA rank and scale, under the runner's CPU setup: fused and peft's forward
    give the same loss bit for bit and gradients as close to the float32 ones."""
    fused, plain = _fused_and_plain(smollm2_path, cpu_setup=True, lora_rank=16, lora_alpha=32)
    input_ids = torch.randint(3, 40000, (2, 64), generator=torch.Generator().manual_seed(1))
    _close_to_peft(fused, plain, input_ids)


def test_the_kept_copy_takes_the_rows_of_the_rank_asked_for():
    """Another adapter of another rank made active: the stacked tensor follows its rank; the copy stays the cast."""
    from lmforge.model.recast_weights import kept_copy_rows

    layer = torch.nn.Linear(8, 6, bias=False).requires_grad_(False)
    assert kept_copy_rows(layer, 4, torch.bfloat16).shape == (10, 8)
    assert kept_copy_rows(layer, 2, torch.bfloat16).shape == (8, 8)
    copy = kept_copy_rows(layer, 0, torch.bfloat16)
    assert copy.shape == (6, 8) and torch.equal(copy, layer.weight.to(torch.bfloat16))
    assert kept_copy_rows(layer, 2, torch.bfloat16).untyped_storage().data_ptr() == copy.untyped_storage().data_ptr()
