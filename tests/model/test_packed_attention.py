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


def _attention_ops(model, batch, grad: bool) -> set[str]:
    """The SDPA kernels one forward (and backward, with `grad`) of `model` runs, from torch's profiler."""
    inputs = {k: v for k, v in batch.items() if not k.startswith("num_")}
    with torch.profiler.profile() as profile, torch.set_grad_enabled(grad):
        loss = model(**inputs, use_cache=False).loss
        if grad:
            loss.backward()
    return {event.key for event in profile.key_averages() if "scaled_dot_product" in event.key}


@pytest.mark.parametrize("autocast", [False, True])
def test_short_rows_train_with_the_math_kernel_on_cpu(tiny_llama_path, tiny_tokenizer, autocast):
    """Padded rows up to CPU_MATH_MAX_KEYS long train with SDPA's math kernel (its backward is faster there than
    the CPU flash kernel's); longer rows and gradient-free calls keep flash. Same loss and gradients as
    transformers' own SDPA on the same batch."""
    from lmforge.model.packed_attention import CPU_MATH_MAX_KEYS

    register()
    ours = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32, attn_implementation=PACKED_SDPA)
    theirs = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32, attn_implementation="sdpa")
    columns = _examples(tiny_tokenizer, count=4)
    rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    short = SftCollator(pad_token_id=tiny_tokenizer.pad_token_id)(rows)
    assert short["input_ids"].shape[1] <= CPU_MATH_MAX_KEYS and (short["attention_mask"] == 0).any()
    context = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else torch.autocast("cpu", enabled=False)
    with context:
        assert "aten::_scaled_dot_product_flash_attention_for_cpu" not in _attention_ops(ours, short, grad=True)
        assert "aten::_scaled_dot_product_flash_attention_for_cpu" in _attention_ops(ours, short, grad=False)
        assert "aten::_scaled_dot_product_flash_attention_for_cpu" in _attention_ops(theirs, short, grad=True)
        long = {key: value.repeat(1, CPU_MATH_MAX_KEYS // value.shape[1] + 1) for key, value in short.items()
                if key in ("input_ids", "attention_mask", "labels")}
        assert "aten::_scaled_dot_product_flash_attention_for_cpu" in _attention_ops(ours, long, grad=True)
        our_loss, our_grads = _loss_and_grads(ours, short)
        their_loss, their_grads = _loss_and_grads(theirs, short)
    assert our_loss == pytest.approx(their_loss, rel=1e-2 if autocast else 1e-6)
    for mine, reference in zip(our_grads, their_grads, strict=True):
        if autocast:
            assert (mine - reference).norm() <= 0.02 * reference.norm() + 1e-6
        else:
            torch.testing.assert_close(mine, reference, rtol=1e-4, atol=1e-6)
