"""FLOPs per token and MFU against hand computations; the peak probe and its cache."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, MixtralConfig, Qwen2Config

from lmforge.data.collator import SftCollator, attention_pairs
from lmforge.errors import ModelError
from lmforge.train import peak
from lmforge.train.flops import (
    DecoderShape,
    attention_flops_per_token,
    mfu,
    packed_context,
    peak_bf16_flops,
    training_flops_per_token,
)
from lmforge.train.peak import probe_matmul_flops
from lmforge.train.summary import utilisation
from lmforge.train.trainer import TokenCounts

# Qwen2.5-0.5B's published config.json
QWEN25_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                  num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True)


def small_shape() -> DecoderShape:
    return DecoderShape(layers=2, hidden=8, heads=2, kv_heads=1, head_dim=4, intermediate=16, vocab=10)


def test_matmul_weights_by_hand():
    # per layer: q and o 8x8 each (128), k and v 8x4 each (64), gate/up/down 8x16 each (384) = 576
    # two layers 1152, output head 10x8 = 80
    assert small_shape().matmul_params == 1232


def test_per_layer_mlp_sizes_count_their_total():
    from transformers import Gemma3nTextConfig

    config = Gemma3nTextConfig(hidden_size=64, intermediate_size=[128, 256], num_hidden_layers=2,
                               num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=100,
                               layer_types=["sliding_attention", "full_attention"])
    shape = DecoderShape.from_config(config)
    attention = 2 * 64 * 64 + 2 * 64 * 32
    assert shape.matmul_params == 2 * attention + 3 * 64 * (128 + 256) + 100 * 64


def test_layers_of_different_shapes_are_refused_with_the_way_out():
    from transformers import Gemma4TextConfig

    config = Gemma4TextConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                              num_key_value_heads=2, head_dim=16, global_head_dim=32, vocab_size=100,
                              layer_types=["sliding_attention", "full_attention"])
    assert config.is_heterogeneous
    with pytest.raises(ModelError, match=r"`gemma4_text` sizes its layers one by one .*training_flops_per_token"):
        DecoderShape.from_config(config)


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


def test_freeze_tuning_adds_the_weight_gradients_of_what_it_trains():
    shape = small_shape()
    assert training_flops_per_token(shape, 5, adapter_params=0, trained_base_params=200) == 4 * 1232 + 2 * 200 + 960


def test_the_matmul_probe_measures_a_plausible_rate():
    rate = probe_matmul_flops(torch.device("cpu"), torch.float32, size=256, seconds=0.01)
    assert 1e8 < rate < 1e14  # any CPU of the last decades, and none beyond a GPU's rate


def test_the_peak_is_measured_once_per_device_dtype_and_torch_then_read_from_the_cache(tmp_path, monkeypatch):
    measured = []

    def small_probe(device, dtype):  # the real probe, on a small product to keep the test short
        measured.append(dtype)
        return probe_matmul_flops(device, dtype, size=128, seconds=0.01)

    monkeypatch.setattr(peak, "probe_matmul_flops", small_probe)
    monkeypatch.setattr(peak, "_MEASURED_IN_THIS_PROCESS", {})  # as in a new process
    cache, cpu = tmp_path / "home" / "peak_flops.json", torch.device("cpu")
    first, source = peak.peak_flops(cpu, torch.float32, cache)
    assert source == "measured" and measured == [torch.float32]
    assert peak.peak_flops(cpu, torch.float32, cache) == (first, "measured, cached") and len(measured) == 1
    assert peak.peak_flops(cpu, torch.bfloat16, cache)[1] == "measured" and len(measured) == 2
    keys = json.loads(cache.read_text())
    assert set(keys) == {peak.device_key(cpu, torch.float32), peak.device_key(cpu, torch.bfloat16)}
    assert f"x{torch.get_num_threads()} threads | torch {torch.__version__} | float32" in peak.device_key(
        cpu, torch.float32)
    other_home = tmp_path / "other" / "peak_flops.json"  # this process's figure, not probed again
    assert peak.peak_flops(cpu, torch.float32, other_home) == (first, "measured, cached") and len(measured) == 2
    assert json.loads(other_home.read_text()) == {peak.device_key(cpu, torch.float32): first}
    monkeypatch.setattr(peak, "_MEASURED_IN_THIS_PROCESS", {})  # a new process
    cache.write_text("{not json")  # a damaged cache is measured again and rewritten
    assert peak.peak_flops(cpu, torch.float32, cache)[1] == "measured" and len(measured) == 3
    assert json.loads(cache.read_text())


def test_a_peak_below_what_a_run_achieved_is_measured_again_and_the_cache_keeps_the_highest(tmp_path, monkeypatch):
    """A probe taken while a neighbour held a core reads low (half, on a 2-core host); cached, it would put every
    later run's MFU above 100%."""
    measured = []

    def small_probe(device, dtype):
        measured.append(dtype)
        return probe_matmul_flops(device, dtype, size=128, seconds=0.01)

    monkeypatch.setattr(peak, "probe_matmul_flops", small_probe)
    monkeypatch.setattr(peak, "_MEASURED_IN_THIS_PROCESS", {})
    cache, cpu = tmp_path / "peak_flops.json", torch.device("cpu")
    key = peak.device_key(cpu, torch.float32)
    cache.write_text(json.dumps({key: 1e6}))  # the transient low figure
    assert peak.peak_flops(cpu, torch.float32, cache) == (1e6, "measured, cached") and not measured
    again, source = peak.peak_flops(cpu, torch.float32, cache, achieved=2e6)
    assert source == "measured" and measured == [torch.float32] and again > 2e6
    assert json.loads(cache.read_text()) == {key: again}
    assert peak.peak_flops(cpu, torch.float32, cache, achieved=2e6) == (again, "measured, cached")
    cache.write_text(json.dumps({key: 1e16}))  # a higher figure than this probe's stays
    assert peak.peak_flops(cpu, torch.float32, cache, achieved=2e16)[0] == 1e16 and len(measured) == 2


def test_summary_utilisation_by_hand(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path))
    config = Qwen2Config(**QWEN25_05B)
    cpu = torch.device("cpu")
    (tmp_path / peak.CACHE_FILE).write_text(json.dumps({peak.device_key(cpu, torch.bfloat16): 2e12}))
    counts = TokenCounts(input_tokens=1200, non_pad_tokens=1000, attention_pairs=1000 * 300)
    rates = utilisation(config, counts, 10.0, finetuning_type="lora", trainable=4_000_000, dtype=torch.bfloat16)
    per_token = 4 * 493_961_216 + 6 * 4_000_000 + 12 * 24 * 896 * 300
    assert rates["flops_per_token"] == per_token
    assert rates["model_tflops_per_s"] == round(100 * per_token / 1e12, 4)
    assert rates["mfu"] == round(100 * per_token / 2e12, 4) and rates["peak_source"] == "measured, cached"
    assert rates["peak_dtype"] == "bfloat16" and rates["peak_tflops_per_s"] == 2.0
    full = utilisation(config, counts, 10.0, finetuning_type="full", trainable=1, dtype=torch.bfloat16)
    assert full["flops_per_token"] == 6 * 493_961_216 + 12 * 24 * 896 * 300
    assert utilisation(config, TokenCounts(), 10.0, finetuning_type="lora", trainable=1,
                       dtype=torch.bfloat16)["mfu"] is None  # trl's trainers count no tokens
    moe = utilisation(MixtralConfig(), counts, 10.0, finetuning_type="lora", trainable=1, dtype=torch.bfloat16)
    assert moe["mfu"] is None and "dense Llama-style" in moe["mfu_unavailable"]


def test_a_packed_rows_attention_pairs_leave_its_padding_out():
    assert attention_pairs([0, 1, 2, 0, 1]) == 3 * 3 + 2 * 2
    batch = SftCollator(pad_token_id=0)([{"input_ids": [5] * 5, "labels": [5] * 5, "position_ids": [0, 1, 2, 0, 1]}])
    assert batch["input_ids"].shape[1] == 8 and int(batch["num_attention_pairs"]) == 13
