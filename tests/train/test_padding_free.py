"""Padding-free batches (`data.padding_free`): the batch as one row, what the rule turns on, what is refused."""

import itertools

import pytest
import torch
from transformers import AutoModelForCausalLM

from lmforge.config import build_config
from lmforge.data.collator import PADDING_FREE_MULTIPLE, SftCollator
from lmforge.data.labels import IGNORE_INDEX
from lmforge.errors import ConfigError
from lmforge.model import packed_attention
from lmforge.model.packed_attention import CPU_FLASH_READS_GROUPED_HEADS
from lmforge.preflight import preflight
from lmforge.testing.checkpoint_files import save_tiny_checkpoint_files
from lmforge.train.padding_free import padding_free_batches
from tests.refdata import refdata


def test_the_batch_becomes_one_row_with_restarting_positions_and_each_rows_first_label_left_out():
    rows = [{"input_ids": [5, 6, 7], "labels": [5, 6, 7]}, {"input_ids": [8, 9], "labels": [IGNORE_INDEX, 9]},
            {"input_ids": [3, 4, 5, 6], "labels": [IGNORE_INDEX, IGNORE_INDEX, 5, 6]}]
    batch = SftCollator(pad_token_id=0, padding_free=True)(rows)
    assert batch["input_ids"].shape == (1, PADDING_FREE_MULTIPLE)  # 9 tokens, padded once at the end
    assert batch["input_ids"][0, :9].tolist() == [5, 6, 7, 8, 9, 3, 4, 5, 6]
    assert batch["position_ids"][0, :9].tolist() == [0, 1, 2, 0, 1, 0, 1, 2, 3]
    assert batch["position_ids"][0, 9:].tolist() == list(range(PADDING_FREE_MULTIPLE - 9))  # one more sequence
    # a padded row's first label is never predicted (the causal shift); in one row the previous example would
    assert batch["labels"][0, :9].tolist() == [IGNORE_INDEX, 6, 7, IGNORE_INDEX, 9, IGNORE_INDEX, IGNORE_INDEX, 5, 6]
    assert (batch["labels"][0, 9:] == IGNORE_INDEX).all() and "attention_mask" not in batch
    assert (batch["num_real_tokens"].item(), batch["num_examples"].item()) == (9, 3)
    assert batch["num_attention_pairs"].item() == 9 + 4 + 16  # the padding tail's attention is no model FLOP
    padded = SftCollator(pad_token_id=0)(rows)
    assert (padded["labels"][:, 1:] != IGNORE_INDEX).sum() == (batch["labels"] != IGNORE_INDEX).sum()
    # packed rows keep their positions: their examples stay apart in the one row too
    packed = [{"input_ids": [1, 2, 3, 4], "labels": [1, 2, 3, 4], "position_ids": [0, 1, 0, 1]},
              {"input_ids": [5, 6], "labels": [5, 6], "position_ids": [0, 1]}]
    batch = SftCollator(pad_token_id=0, padding_free=True)(packed)
    assert batch["position_ids"][0, :6].tolist() == [0, 1, 0, 1, 0, 1] and batch["num_examples"].item() == 3


def _config(path, **keys):
    return build_config({"model_name_or_path": str(path), "template": "chatml", "stage": "sft",
                         "dataset_dir": str(refdata("llamafactory_data")), "dataset": "alpaca_en_demo",
                         "output_dir": str(path / "out"), **keys})


@pytest.mark.parametrize(("keys", "expected"), [
    ({}, True), ({"padding_free": False}, False), ({"packing": True}, False), ({"shift_attn": True}, False),
    ({"neftune_noise_alpha": 5}, False), ({"ignore_pad_token_for_loss": False}, False),
    ({"packed_attention": False}, False), ({"attn_implementation": "eager"}, False),
])
def test_unset_it_is_on_for_cpu_training_of_unpacked_rows_through_the_packed_attention(tiny_llama_path, keys,
                                                                                      expected):
    cfg = _config(tiny_llama_path, **keys)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, attn_implementation=cfg.model.attention
                                                 if cfg.model.attention != "auto" else "sdpa")
    assert padding_free_batches(cfg, model, packed=bool(keys.get("packing"))) is expected


def test_unset_it_stays_off_on_a_decoder_that_mixes_the_examples_of_a_row(tmp_path):
    import transformers

    from lmforge.testing.tiny import TINY_FAMILIES, build_tiny_tokenizer

    config, auto_class = TINY_FAMILIES["lfm2"](build_tiny_tokenizer())
    model = getattr(transformers, auto_class).from_config(config)
    assert model.config._attn_implementation == "sdpa"
    path = save_tiny_checkpoint_files(tmp_path / "lfm2", "lfm2")
    assert padding_free_batches(_config(path), model, packed=False) is False


@pytest.mark.parametrize(("keys", "message"), [
    ({"stage": "dpo", "dataset": "dpo_en_demo"}, r"`padding_free` applies to pt and sft batches, not to `stage: dpo`"),
    ({"neftune_noise_alpha": 5}, r"`padding_free: true` puts a batch's examples in one row .*`neftune_noise_alpha`"),
    ({"shift_attn": True}, r"`shift_attn`.*remove one of them"),
    ({"ignore_pad_token_for_loss": False}, r"`ignore_pad_token_for_loss: false`"),
])
def test_asked_for_where_it_cannot_hold_it_is_refused_before_loading(tiny_llama_path, keys, message):
    with pytest.raises(ConfigError, match=message):
        preflight(_config(tiny_llama_path, padding_free=True, **keys), "check")


def test_asked_for_on_a_decoder_that_mixes_examples_it_is_refused_with_packings_reason(tmp_path):
    path = save_tiny_checkpoint_files(tmp_path / "lfm2", "lfm2")  # config and tokenizer, no weights
    with pytest.raises(ConfigError, match=r"`padding_free` cannot keep examples apart on `lfm2` models: its "
                                          r"decoder's short-convolution .*Set `padding_free: false`"):
        preflight(_config(path, padding_free=True), "check")
    preflight(_config(path), "check")  # unset: off on this model, nothing to refuse


@pytest.mark.parametrize("model", ["tiny-t5", "qwen2_vl"])
def test_asked_for_on_an_encoder_decoder_or_media_rows_it_is_refused_before_the_weights_load(tmp_path, model):
    from rich.console import Console

    from lmforge.data.stage_data import SFT
    from lmforge.hub.builtin import builtin_path
    from lmforge.testing.tiny_vlm import build_tiny_vlm
    from lmforge.train.prepare import prepare_data

    if model == "tiny-t5":
        keys = {"model_name_or_path": str(builtin_path("builtin:tiny-t5")), "template": "seq2seq",
                "dataset": "identity", "dataset_dir": "examples/data"}
        message = "an encoder-decoder's batches are padded by their own collator: remove `padding_free`$"
    else:
        keys = {"model_name_or_path": str(build_tiny_vlm(tmp_path / model, model)), "template": "qwen2_vl",
                "dataset": "mllm_demo", "dataset_dir": str(refdata("llamafactory_data"))}
        message = r"media rows' batches are .*\(`packing: true` packs media rows batch by batch\)"
    cfg = build_config({**keys, "stage": "sft", "output_dir": str(tmp_path / "out"), "padding_free": True})
    kind = preflight(cfg, "check")
    with pytest.raises(ConfigError, match=message):
        prepare_data(cfg, SFT, kind, Console(quiet=True))


def _per_sequence_sdpa(query, key, value, bounds, scale):
    parts = [torch.nn.functional.scaled_dot_product_attention(
        query[:, :, start:end], key[:, :, start:end], value[:, :, start:end], is_causal=True, scale=scale,
        enable_gqa=True) for start, end in itertools.pairwise(bounds)]
    return torch.cat(parts, dim=2).transpose(1, 2)  # [B, L, H, D]


def test_a_short_sequence_row_trains_without_the_cpu_flash_kernel():
    """All sequences short: one padded computation over them (model/packed_attention.py), each sequence attending
    only within itself; its padding slots add nothing to any gradient."""
    from lmforge.model.packed_attention import _ShortSequencesAttention

    torch.manual_seed(0)
    bounds = [0, 5, 12, 13, 20]
    query = torch.randn(1, 4, 20, 8, requires_grad=True)
    key, value = (torch.randn(1, 2, 20, 8, requires_grad=True) for _ in range(2))
    out = _ShortSequencesAttention.apply(query, key, value, bounds, None)  # [B, L, H, D]
    expected = _per_sequence_sdpa(query, key, value, bounds, None)
    torch.testing.assert_close(out, expected)
    weights = torch.randn_like(out)
    grads = torch.autograd.grad((out * weights).sum(), (query, key, value))
    expected_grads = torch.autograd.grad((expected * weights).sum(), (query, key, value))
    for mine, reference in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(mine, reference)


# under autocast the caller has cast q/k/v to bf16 already (packed_attention._per_sequence), as SDPA would
@pytest.mark.parametrize("kv_heads", [4, 2])
@pytest.mark.parametrize(("dtype", "autocast"), [(torch.float32, False), (torch.bfloat16, False),
                                                 (torch.bfloat16, True), (torch.float64, False)])
def test_the_padded_sequences_attention_is_as_close_to_exact_as_sdpas_math_kernel(dtype, autocast, kv_heads):
    """Half precision is computed in float32 as SDPA's math kernel does: output and gradients in the input's dtype,
    no further from the float64 result than the math kernel's own (the sums run in another order)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from lmforge.model.packed_attention import _ShortSequencesAttention

    bounds = [0, 7, 11, 23, 24, 33]
    torch.manual_seed(0)
    inputs = [torch.randn(1, 4, 33, 8), torch.randn(1, kv_heads, 33, 8), torch.randn(1, kv_heads, 33, 8)]
    upstream = torch.randn(1, 33, 4, 8)

    def run(attention, as_dtype):
        leaves = [tensor.to(as_dtype).requires_grad_(True) for tensor in inputs]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast and as_dtype != torch.float64):
            out = attention(*leaves)
        out.backward(upstream.to(out.dtype))
        return [out] + [leaf.grad for leaf in leaves]

    def sdpa_math(query, key, value):
        with sdpa_kernel(SDPBackend.MATH):
            return _per_sequence_sdpa(query, key, value, bounds, 0.3)

    exact = run(sdpa_math, torch.float64)
    reference = run(sdpa_math, dtype)
    for mine, theirs, truth in zip(run(lambda q, k, v: _ShortSequencesAttention.apply(q, k, v, bounds, 0.3), dtype),
                                   reference, exact, strict=True):
        assert mine.dtype == theirs.dtype == dtype
        own_error = (theirs.double() - truth).abs().max().item()
        assert (mine.double() - truth).abs().max().item() <= 2 * own_error + 1e-12


# two rows of 400 tokens: a sequence longer than CPU_FLASH_FLOAT32_BACKWARD_MAX_KEYS beside shorter ones, the first
# row's padding tail a sequence of its own
ROW_BOUNDS = [0, 150, 395, 400, 800]


@pytest.mark.parametrize("kv_heads", [4, pytest.param(2, marks=pytest.mark.skipif(
    not CPU_FLASH_READS_GROUPED_HEADS, reason="torch < 2.9: no grouped heads in the CPU flash kernel"))])
@pytest.mark.parametrize(("dtype", "autocast"), [(torch.float32, False), (torch.bfloat16, True)])
def test_per_sequence_flash_backward_is_the_kernels_own_or_closer_to_exact(dtype, autocast, kv_heads):
    """The CPU flash kernel per sequence, rows of a batch apart: its output exactly; its gradients exactly for
    float32 and for a long half-precision sequence, and for a shorter one (backward in float32, where the kernel's
    half-precision backward is slow) no further from the float64 result than the kernel's own."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from lmforge.model.packed_attention import CPU_FLASH_FLOAT32_BACKWARD_MAX_KEYS, _CpuFlashPerSequence

    torch.manual_seed(0)
    inputs = [torch.randn(2, 4, 400, 8), torch.randn(2, kv_heads, 400, 8), torch.randn(2, kv_heads, 400, 8)]
    upstream = torch.randn(2, 400, 4, 8)

    def flat(states):  # [B, H, L, D] -> [1, H, B*L, D]
        return states.transpose(0, 1).reshape(1, states.shape[1], 800, 8)

    def sdpa(backend):
        def attention(query, key, value):
            with sdpa_kernel(backend):
                out = _per_sequence_sdpa(flat(query), flat(key), flat(value), ROW_BOUNDS, 0.3)  # [1, T, H, D]
            return out.reshape(2, 400, 4, 8)  # [B, L, H, D] as attention functions return
        return attention

    def run(attention, as_dtype):
        leaves = [tensor.to(as_dtype, copy=True).requires_grad_(True) for tensor in inputs]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast and as_dtype != torch.float64):
            out = attention(*leaves)
        out.backward(upstream.to(out.dtype))
        return [out.permute(2, 0, 1, 3).reshape(4, 800, 8)] + [flat(leaf.grad)[0] for leaf in leaves]  # [H, T, D]

    ours = run(lambda q, k, v: _CpuFlashPerSequence.apply(q, k, v, ROW_BOUNDS, 0.3), dtype)
    kernel, exact = run(sdpa(SDPBackend.FLASH_ATTENTION), dtype), run(sdpa(SDPBackend.MATH), torch.float64)
    float32_backward = torch.zeros(800, dtype=torch.bool)
    for start, end in itertools.pairwise(ROW_BOUNDS):
        float32_backward[start:end] = dtype != torch.float32 and end - start <= CPU_FLASH_FLOAT32_BACKWARD_MAX_KEYS
    assert 0 < float32_backward.sum() < 800 or dtype == torch.float32
    assert torch.equal(ours[0], kernel[0])
    for mine, flash, truth in zip(ours[1:], kernel[1:], exact[1:], strict=True):
        assert mine.dtype == dtype
        assert torch.equal(mine[:, ~float32_backward], flash[:, ~float32_backward])
        if float32_backward.any():
            mine_error, own_error = ((grad[:, float32_backward].double() - truth[:, float32_backward]).abs()
                                     for grad in (mine, flash))
            assert not torch.equal(mine_error, own_error)  # the float32 backward ran
            assert mine_error.mean() <= own_error.mean()  # and is closer to exact on the whole
            assert mine_error.max() <= 2 * own_error.max()  # and no token more than a rounding step further


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_grouped_heads_repeated_for_an_older_cpu_flash_kernel_give_the_same_attention(monkeypatch, dtype):
    """torch 2.6-2.8's CPU flash kernel cannot read grouped key/value heads (it returns garbage): there they are
    repeated per query head and their gradients summed back, the same numbers as the grouped kernel's (2.9+)."""
    from lmforge.model.packed_attention import _CpuFlashPerSequence

    torch.manual_seed(0)
    inputs = [torch.randn(2, 4, 400, 8, dtype=dtype), torch.randn(2, 2, 400, 8, dtype=dtype),
              torch.randn(2, 2, 400, 8, dtype=dtype)]
    upstream = torch.randn(2, 400, 4, 8, dtype=dtype)

    def run(grouped_kernel: bool) -> list[torch.Tensor]:
        monkeypatch.setattr(packed_attention, "CPU_FLASH_READS_GROUPED_HEADS", grouped_kernel)
        leaves = [tensor.clone().requires_grad_(True) for tensor in inputs]
        out = _CpuFlashPerSequence.apply(*leaves, ROW_BOUNDS, 0.3)
        out.backward(upstream)
        return [out, *(leaf.grad for leaf in leaves)]

    repeated = run(False)
    reference = run(True) if CPU_FLASH_READS_GROUPED_HEADS else None
    assert [tensor.shape for tensor in repeated] == [upstream.shape, *(tensor.shape for tensor in inputs)]
    if reference is None:  # torch < 2.9: against the repeated heads through SDPA's math kernel
        leaves = [tensor.double().requires_grad_(True) for tensor in inputs]
        key, value = (leaf.repeat_interleave(2, dim=1) for leaf in leaves[1:])
        reference = [_per_sequence_sdpa_reference(leaves[0], key, value), *leaves]
        reference[0].backward(upstream.double())
        reference = [reference[0], *(leaf.grad for leaf in leaves)]
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2
    for mine, theirs in zip(repeated, reference, strict=True):
        torch.testing.assert_close(mine.double(), theirs.double(), atol=tolerance, rtol=tolerance)


def _per_sequence_sdpa_reference(query, key, value):
    """Causal attention within each sequence of `ROW_BOUNDS` over rows [B, H, L, D] laid end to end, as [B, L, H, D]."""
    batch, heads, length, dim = query.shape

    def flat(states):
        return states.transpose(0, 1).reshape(heads, batch * length, dim)

    q, k, v = flat(query), flat(key), flat(value)
    pieces = [torch.nn.functional.scaled_dot_product_attention(q[:, a:b], k[:, a:b], v[:, a:b], is_causal=True,
                                                               scale=0.3) for a, b in itertools.pairwise(ROW_BOUNDS)]
    return torch.cat(pieces, dim=1).reshape(heads, batch, length, dim).permute(1, 2, 0, 3)
