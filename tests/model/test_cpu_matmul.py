"""`cpu_matmul`: fp32 linear layers through oneDNN give torch's losses and gradients, and the choice is safe."""

import logging

import pytest
import torch

from lmforge.errors import ModelError
from lmforge.model import cpu_matmul
from tests.model.conftest import config_for, load_configured
from tests.model.test_fused_lora import _loss_and_grads, _randomize_adapters
from tests.model.test_lora_options import lora_model

needs_onednn = pytest.mark.skipif(not cpu_matmul.onednn_available(), reason="this torch is built without oneDNN")


@pytest.fixture
def fresh_choice(monkeypatch):
    """Each test decides afresh; the process's choice is restored afterwards."""
    monkeypatch.setattr(cpu_matmul._Choice, "use_onednn", False)
    monkeypatch.setattr(cpu_matmul._Choice, "decided", None)


def _with_each_kernel(model, input_ids):
    """(loss, gradients) of the same model and weights with oneDNN, then with torch's BLAS."""
    cpu_matmul.choose("onednn")
    ours = _loss_and_grads(model, input_ids)
    cpu_matmul.choose("torch")
    return ours, _loss_and_grads(model, input_ids)


def _assert_same(ours, theirs):
    (loss, grads), (expected_loss, expected_grads) = ours, theirs
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    assert grads.keys() == expected_grads.keys() and grads
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected_grads[name], rtol=1e-4, atol=1e-6, msg=name)


@needs_onednn
@pytest.mark.parametrize("family", ["llama", "qwen2"])  # qwen2: biased q/k/v projections
def test_full_finetuning_gets_torch_loss_and_every_gradient(tiny_family, family, fresh_choice):
    model = load_configured(config_for(tiny_family(family), cpu_matmul="onednn"), dtype=torch.float32)
    linears = [m for m in model.modules() if type(m) is torch.nn.Linear]
    assert linears and all("forward" in vars(m) for m in linears)  # the output head included
    input_ids = torch.randint(3, model.config.vocab_size, (2, 40), generator=torch.Generator().manual_seed(1))
    ours, theirs = _with_each_kernel(model, input_ids)
    assert any(name.endswith("q_proj.bias") for name in ours[1]) == (family == "qwen2")
    _assert_same(ours, theirs)


@needs_onednn
@pytest.mark.parametrize("fused", [True, False])
def test_lora_gets_torch_loss_and_adapter_gradients(tiny_family, fused, fresh_choice):
    model, _ = lora_model(tiny_family("qwen2"), lora_rank=4, cpu_matmul="onednn", fused_lora=fused)
    _randomize_adapters(model)
    input_ids = torch.randint(3, model.config.vocab_size, (2, 48), generator=torch.Generator().manual_seed(2))
    _assert_same(*_with_each_kernel(model, input_ids))


@needs_onednn
def test_autocast_and_other_dtypes_run_torch_linear(tiny_family, fresh_choice):
    model = load_configured(config_for(tiny_family("llama"), cpu_matmul="onednn"), dtype=torch.float32)
    layer = model.model.layers[0].mlp.up_proj
    x = torch.randn(3, layer.in_features)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(x).dtype == torch.bfloat16
    layer.to(torch.bfloat16)
    torch.testing.assert_close(layer(x.bfloat16()), torch.nn.functional.linear(x.bfloat16(), layer.weight))


@needs_onednn
def test_a_model_that_will_multiply_in_half_precision_is_not_routed(tiny_family, fresh_choice):
    # training under autocast: the route would change no product, and its forward would stand where the
    # training's own half-precision forwards go (weight copies recast or kept, model/recast_weights.py)
    model = load_configured(config_for(tiny_family("llama"), cpu_matmul="onednn"), dtype=torch.float32,
                            fp32_products=False)
    assert not any("forward" in vars(m) for m in model.modules())


def test_torch_setting_leaves_layers_alone(tiny_family, fresh_choice):
    model = load_configured(config_for(tiny_family("llama"), cpu_matmul="torch"), dtype=torch.float32)
    assert not any("forward" in vars(m) for m in model.modules())


def test_auto_uses_onednn_only_when_clearly_faster(monkeypatch, caplog, fresh_choice):
    monkeypatch.setattr(cpu_matmul, "onednn_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(cpu_matmul, "_calibrate", lambda: 1.1)
    with caplog.at_level(logging.INFO, logger="lmforge.model.cpu_matmul"):
        assert cpu_matmul.choose("auto") is False
    assert "1.1x as fast as torch's BLAS here; using torch's BLAS" in caplog.text
    monkeypatch.setattr(cpu_matmul._Choice, "decided", None)
    monkeypatch.setattr(cpu_matmul, "_calibrate", lambda: 2.4)
    assert cpu_matmul.choose("auto") is True
    calls = []
    monkeypatch.setattr(cpu_matmul, "_calibrate", lambda: calls.append(1) or 2.4)
    assert cpu_matmul.choose("auto") is True and not calls  # decided once per process


def test_auto_falls_back_when_onednn_fails_here(monkeypatch, caplog, fresh_choice):
    monkeypatch.setattr(cpu_matmul, "onednn_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def unsupported(*args):
        raise RuntimeError("could not create a primitive")

    monkeypatch.setattr(cpu_matmul, "_onednn_linear", unsupported)
    with caplog.at_level(logging.WARNING, logger="lmforge.model.cpu_matmul"):
        assert cpu_matmul.choose("auto") is False
    assert "oneDNN's linear failed on this machine (could not create a primitive); using torch's BLAS" in caplog.text


def test_auto_leaves_gpu_machines_alone(monkeypatch, fresh_choice):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(cpu_matmul, "_calibrate", lambda: pytest.fail("no calibration where training runs on a GPU"))
    assert cpu_matmul.choose("auto") is False


def test_onednn_without_onednn_says_what_to_set(monkeypatch, fresh_choice):
    monkeypatch.setattr(cpu_matmul, "onednn_available", lambda: False)
    with pytest.raises(ModelError, match="use `cpu_matmul: auto` or `torch`"):
        cpu_matmul.choose("onednn")
