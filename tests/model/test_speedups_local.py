"""Speed-ups are applied to the one model that asked for them: in the same process, a model prepared
without them is plain transformers/peft and computes what a fresh plain model computes."""

import pytest
import torch
from peft.tuners.lora import Linear as LoraLinear
from transformers import AttentionInterface, TrainingArguments
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from lmforge.model import cpu_matmul, fused_lora, packed_attention
from lmforge.model.packed_attention import PACKED_SDPA, packed_sequence_kwargs
from lmforge.train.trainer import LmforgeTrainer
from tests.model.conftest import config_for, load_configured
from tests.model.test_fused_lora import _loss_and_grads, _randomize_adapters
from tests.model.test_lora_options import lora_model

ONEDNN = cpu_matmul.onednn_available()
# 12 packed sequences, 72 tokens: enough for fused_lora to fold a rank-4 layer (16 tokens per unit of rank)
POSITIONS = torch.tensor([[0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7] * 4])


def _prepared(path, tmp_path, *, speedups: bool):
    """A LoRA model as a training run prepares it: loaded, adapted, handed to the trainer."""
    matmul = ("onednn" if ONEDNN else "torch") if speedups else "torch"
    model, _ = lora_model(path, lora_rank=4, lora_alpha=16, cpu_matmul=matmul, fused_lora=speedups)
    _randomize_adapters(model)
    args = TrainingArguments(output_dir=str(tmp_path / str(speedups)), report_to="none", use_cpu=True,
                             dataloader_pin_memory=False, save_strategy="no")
    LmforgeTrainer(model=model, args=args, packed_attention=speedups)
    return model


def _batch(model):
    input_ids = torch.randint(3, model.config.vocab_size, POSITIONS.shape, generator=torch.Generator().manual_seed(3))
    return {"input_ids": input_ids, "labels": input_ids, "position_ids": POSITIONS, "use_cache": False,
            **packed_sequence_kwargs(POSITIONS)}


def _loss_and_grads_of(model, batch):
    model.zero_grad()
    loss = model(**batch).loss
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def _assert_close(ours, theirs):
    (loss, grads), (expected_loss, expected_grads) = ours, theirs
    assert loss == pytest.approx(expected_loss, rel=1e-5)
    assert grads.keys() == expected_grads.keys() and grads
    for name, grad in grads.items():
        torch.testing.assert_close(grad, expected_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_a_model_without_speedups_stays_plain_beside_one_with_them(tiny_family, tmp_path, monkeypatch):
    path = tiny_family("qwen2")  # q/k/v carry a bias
    sped = _prepared(path, tmp_path, speedups=True)
    plain = _prepared(path, tmp_path, speedups=False)
    fresh = _prepared(path, tmp_path, speedups=False)

    # the sped-up model has each speed-up ...
    assert sped.config._attn_implementation == PACKED_SDPA
    assert all("forward" in vars(m) for m in sped.modules() if isinstance(m, LoraLinear))  # fused_lora
    if ONEDNN:  # cpu_matmul: the base model's layers (the adapters' own come later, from peft)
        adapters = _adapter_layers(sped)
        assert all(cpu_matmul.is_routed(m) for m in sped.modules() if type(m) is torch.nn.Linear and m not in adapters)
    # ... and the other model in the same process has none: transformers' and peft's own
    assert plain.config._attn_implementation == "sdpa"
    assert AttentionInterface._global_mapping["sdpa"] is sdpa_attention_forward
    assert ALL_ATTENTION_FUNCTIONS["sdpa"] is sdpa_attention_forward
    assert AttentionMaskInterface._global_mapping["sdpa"] is sdpa_mask
    linears = [m for m in plain.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(type(m) is torch.nn.Linear and m.forward.__func__ is torch.nn.Linear.forward
                           for m in linears)
    assert torch.nn.Linear.forward.__module__ == "torch.nn.modules.linear"  # the class's own, unchanged
    lora_layers = [m for m in plain.modules() if isinstance(m, LoraLinear)]
    assert lora_layers and all(type(m) is LoraLinear and "forward" not in vars(m) for m in lora_layers)
    assert not any("forward" in vars(m) for m in plain.modules())

    batch = _batch(plain)  # packed rows with their boundaries: plain sdpa ignores them, the mask does the work
    for model in (plain, fresh, sped):
        model.train()
    plain_result = _loss_and_grads_of(plain, batch)
    fresh_result = _loss_and_grads_of(fresh, batch)
    assert plain_result[0] == fresh_result[0]
    for name, grad in plain_result[1].items():
        assert torch.equal(grad, fresh_result[1][name]), name
    # the speed-ups change the work, not the numbers
    folded, per_sequence = [], []
    fold, attend = fused_lora._FoldedLoraMatmul.apply, packed_attention._per_sequence
    monkeypatch.setattr(fused_lora._FoldedLoraMatmul, "apply", lambda *a: folded.append(1) or fold(*a))
    monkeypatch.setattr(packed_attention, "_per_sequence", lambda *a: per_sequence.append(1) or attend(*a))
    _assert_close(_loss_and_grads_of(sped, batch), fresh_result)
    assert folded and per_sequence  # both really ran
    folded.clear()
    per_sequence.clear()
    _loss_and_grads_of(plain, batch)
    assert not folded and not per_sequence


def _adapter_layers(model):
    return {layer for m in model.modules() if isinstance(m, LoraLinear)
            for layer in (*m.lora_A.values(), *m.lora_B.values())}


def test_the_adapter_saves_and_merges_as_without_speedups(tiny_family, tmp_path):
    path = tiny_family("llama")
    sped = _prepared(path, tmp_path, speedups=True)
    plain = _prepared(path, tmp_path, speedups=False)
    saved = {}
    for name, model in (("sped", sped), ("plain", plain)):
        model.save_pretrained(tmp_path / name)
        saved[name] = (tmp_path / name / "adapter_model.safetensors").read_bytes()
    assert saved["sped"] == saved["plain"]
    input_ids = torch.arange(3, 51).unsqueeze(0)
    with torch.no_grad():
        merged_sped, merged_plain = sped.merge_and_unload().eval(), plain.merge_and_unload().eval()
        assert not any(isinstance(m, LoraLinear) for m in merged_sped.modules())
        torch.testing.assert_close(merged_sped(input_ids=input_ids).logits, merged_plain(input_ids=input_ids).logits,
                                   rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not ONEDNN, reason="this torch is built without oneDNN: no layer can be routed")
@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_routed_layers_give_torch_loss_and_every_gradient(tiny_family, family, monkeypatch):
    """Full fine-tuning: the routed model against an unrouted one loaded in the same process."""
    routed = load_configured(config_for(tiny_family(family), cpu_matmul="onednn"), dtype=torch.float32)
    plain = load_configured(config_for(tiny_family(family), cpu_matmul="torch"), dtype=torch.float32)
    assert not any("forward" in vars(m) for m in plain.modules())
    calls = []
    onednn_linear = cpu_matmul._onednn_linear
    monkeypatch.setattr(cpu_matmul, "_onednn_linear", lambda *a: calls.append(1) or onednn_linear(*a))
    input_ids = torch.randint(3, routed.config.vocab_size, (2, 40), generator=torch.Generator().manual_seed(1))
    ours = _loss_and_grads(routed, input_ids)
    assert calls  # oneDNN really computed the routed model
    calls.clear()
    theirs = _loss_and_grads(plain, input_ids)
    assert not calls  # and nothing of the plain one
    _assert_close(ours, theirs)
