"""Attention within each packed sequence: the same loss and gradients as the masked whole-row path."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from lmforge.data.collator import SftCollator
from lmforge.data.packing import pack_examples
from lmforge.model.packed_attention import PACKED_SDPA, packed_sequence_kwargs, register
from tests.data.test_packing import _examples


def test_boundaries_restart_with_positions_and_rows():
    positions = torch.tensor([[0, 1, 2, 0, 1, 0, 1], [0, 1, 2, 3, 0, 1, 2]])
    kwargs = packed_sequence_kwargs(positions)
    assert kwargs["cu_seq_lens_q"].tolist() == [0, 3, 5, 7, 11, 14]
    assert kwargs["max_length_q"] == 4 and kwargs["cu_seq_lens_k"] is kwargs["cu_seq_lens_q"]


def _loss_and_grads(model, batch, **extra):
    model.zero_grad()
    inputs = {k: v for k, v in batch.items() if not k.startswith("num_")}
    loss = model(**inputs, **extra, use_cache=False).loss
    loss.backward()
    return loss.item(), [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_per_sequence_attention_equals_masked_attention(tiny_llama_path, tiny_tokenizer):
    register()
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32, attn_implementation=PACKED_SDPA)
    packed_columns, report = pack_examples(_examples(tiny_tokenizer, count=9), capacity=256)
    assert report.rows < 9
    features = [dict(zip(packed_columns, values, strict=True)) for values in zip(*packed_columns.values(), strict=True)]
    packed = SftCollator(pad_token_id=tiny_tokenizer.pad_token_id)(features)
    boundaries = packed_sequence_kwargs(packed["position_ids"])
    assert len(boundaries["cu_seq_lens_q"]) - 1 > packed["input_ids"].shape[0]  # rows really hold several examples
    masked_loss, masked_grads = _loss_and_grads(model, packed)
    varlen_loss, varlen_grads = _loss_and_grads(model, packed, **boundaries)
    assert varlen_loss == pytest.approx(masked_loss, rel=1e-6)
    for varlen, masked in zip(varlen_grads, masked_grads, strict=True):
        torch.testing.assert_close(varlen, masked, rtol=1e-4, atol=1e-6)
    # the boundaries are used, not ignored: wrong ones change the loss
    wrong = packed_sequence_kwargs(torch.arange(packed["input_ids"].shape[1]).expand_as(packed["input_ids"]))
    assert _loss_and_grads(model, packed, **wrong)[0] != pytest.approx(masked_loss, rel=1e-6)


def test_per_sequence_attention_under_bf16_autocast(tiny_llama_path, tiny_tokenizer):
    """Under autocast (lmforge's CPU default where the CPU has bf16) RoPE leaves query and key in fp32 and value
    in bf16; the per-sequence path casts them as SDPA does and agrees with the masked path to bf16 precision."""
    register()
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32, attn_implementation=PACKED_SDPA)
    packed_columns, _ = pack_examples(_examples(tiny_tokenizer, count=9), capacity=256)
    features = [dict(zip(packed_columns, values, strict=True)) for values in zip(*packed_columns.values(), strict=True)]
    packed = SftCollator(pad_token_id=tiny_tokenizer.pad_token_id)(features)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        masked_loss, masked_grads = _loss_and_grads(model, packed)
        varlen_loss, varlen_grads = _loss_and_grads(model, packed, **packed_sequence_kwargs(packed["position_ids"]))
    exact_loss, _ = _loss_and_grads(model, packed, **packed_sequence_kwargs(packed["position_ids"]))
    assert varlen_loss != exact_loss  # bf16 really computed
    assert varlen_loss == pytest.approx(masked_loss, rel=1e-2)
    for varlen, masked in zip(varlen_grads, masked_grads, strict=True):
        assert (varlen - masked).norm() <= 0.05 * masked.norm() + 1e-6
