"""FLOPs per token and MFU against hand computations."""

import pytest
import torch
from transformers import AutoModelForCausalLM, MixtralConfig, Qwen2Config

from lmforge.errors import ModelError
from lmforge.train.flops import (
    DecoderShape,
    attention_flops_per_token,
    mfu,
    packed_context,
    peak_bf16_flops,
    training_flops_per_token,
)

# Qwen2.5-0.5B's published config.json
QWEN25_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                  num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True)


def small_shape() -> DecoderShape:
    return DecoderShape(layers=2, hidden=8, heads=2, kv_heads=1, head_dim=4, intermediate=16, vocab=10)


def test_matmul_weights_by_hand():
    # per layer: q and o 8x8 each (128), k and v 8x4 each (64), gate/up/down 8x16 each (384) = 576
    # two layers 1152, output head 10x8 = 80
    assert small_shape().matmul_params == 1232


def test_full_and_lora_flops_by_hand():
    shape = small_shape()
    attention = 12 * 2 * (2 * 4) * 5  # layers x heads x head_dim x context 5
    assert attention_flops_per_token(shape, 5) == attention == 960
    assert training_flops_per_token(shape, 5) == 6 * 1232 + 960
    assert training_flops_per_token(shape, 5, adapter_params=100) == 4 * 1232 + 6 * 100 + 960


def test_qwen25_05b_shape_counts_every_linear_weight_once():
    config = Qwen2Config(**QWEN25_05B)
    shape = DecoderShape.from_config(config)
    assert (shape.heads, shape.kv_heads, shape.head_dim) == (14, 2, 64)
    # 24 x (2 x 896 x 896 + 2 x 896 x 128 + 3 x 896 x 4864) + 151936 x 896, by hand
    assert shape.matmul_params == 24 * (1_605_632 + 229_376 + 13_074_432) + 136_134_656 == 493_961_216
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    linear = sum(module.weight.numel() for module in model.modules() if isinstance(module, torch.nn.Linear))
    assert linear == shape.matmul_params  # the tied head is one nn.Linear sharing the embedding's weight
    assert sum(p.numel() for p in model.parameters()) == 494_032_768  # the published parameter count


def test_packed_context_is_the_token_weighted_mean_length():
    assert packed_context([2, 4]) == pytest.approx((2 * 2 + 4 * 4) / 6)
    assert packed_context([2048]) == 2048
    with pytest.raises(ValueError):
        packed_context([])


def test_peak_rates_and_mfu():
    assert peak_bf16_flops("NVIDIA H200") == 989e12
    assert peak_bf16_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert peak_bf16_flops("NVIDIA H100 PCIe") == 756e12
    assert peak_bf16_flops("NVIDIA H200 NVL") == 835e12
    assert peak_bf16_flops("Tesla T4") is None
    assert mfu(50_000, 3e9, 1e15) == pytest.approx(0.15)


def test_mixture_of_experts_is_refused_with_the_way_out():
    with pytest.raises(ModelError, match="dense Llama-style"):
        DecoderShape.from_config(MixtralConfig())
