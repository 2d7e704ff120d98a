"""Shift short attention (LongLoRA's S²-Attn, `shift_attn`): the attention function against a hand-written
reference, the model in train and eval mode, one instance only, and the refusals."""

import math

import pytest
import torch
from transformers import AttentionInterface, AutoModelForCausalLM
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import sdpa_mask
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from lmforge.config import build_config
from lmforge.errors import ConfigError, LmforgeError
from lmforge.model.fit import check_model_fit
from lmforge.model.shift_attention import S2_SDPA, s2_attention, use_shift_short_attention


def reference(query, key, value, keep=None, shifted=True):
    """S²-Attn written out head by head: groups of a quarter of the row (padded to a multiple of 4); the last
    `heads // 2` heads' groups start half a group later and wrap round; causal and padding masks hold."""
    batch, heads, length, dim = query.shape
    padded = -(-length // 4) * 4
    group = padded // 4
    repeats = heads // key.shape[1]
    index = torch.arange(length)
    out = torch.zeros(batch, length, heads, dim, dtype=torch.float64)
    for head in range(heads):
        shift = group // 2 if shifted and head >= heads // 2 else 0
        group_of = ((index - shift) % padded) // group
        allowed = (index[None, :] <= index[:, None]) & (group_of[None, :] == group_of[:, None])
        allowed = allowed[None] & (keep[:, None, :] if keep is not None else True)
        scores = query[:, head].double() @ key[:, head // repeats].double().transpose(1, 2) / math.sqrt(dim)
        weights = torch.softmax(scores.masked_fill(~allowed, -math.inf), dim=-1).nan_to_num()
        out[:, :, head] = weights @ value[:, head // repeats].double()
    return out


@pytest.mark.parametrize("heads,kv_heads", [(4, 2), (4, 1), (6, 3), (4, 4)])
@pytest.mark.parametrize("length", [16, 13])
@pytest.mark.parametrize("padding", [False, True])
def test_equals_the_reference(heads, kv_heads, length, padding):
    generator = torch.Generator().manual_seed(length + heads)
    query = torch.randn(2, heads, length, 8, generator=generator)
    key, value = (torch.randn(2, kv_heads, length, 8, generator=generator) for _ in range(2))
    keep = None
    if padding:  # right padding in one row, left padding in the other
        keep = torch.ones(2, length, dtype=torch.bool)
        keep[0, -5:], keep[1, :2] = False, False
    mask = None if keep is None else sdpa_mask(batch_size=2, q_length=length, kv_length=length, attention_mask=keep)
    got = s2_attention(query, key, value, mask).double()
    assert not got.isnan().any()
    real = keep if keep is not None else torch.ones(2, length, dtype=torch.bool)  # padding's own output is unused
    torch.testing.assert_close(got[real], reference(query, key, value, keep)[real], rtol=1e-5, atol=1e-5)
    # the reference tells shifted from unshifted grouping, so a wrong or missing shift fails above
    assert not torch.allclose(got[real], reference(query, key, value, keep, shifted=False)[real], atol=1e-3)


@pytest.mark.parametrize("padding", [False, True])
def test_gradients_equal_the_reference(padding):
    generator = torch.Generator().manual_seed(7)
    tensors = [torch.randn(2, heads, 13, 8, generator=generator, dtype=torch.float64, requires_grad=True)
               for heads in (4, 2, 2)]
    keep = torch.ones(2, 13, dtype=torch.bool)
    keep[0, -4:] = not padding
    mask = sdpa_mask(batch_size=2, q_length=13, kv_length=13, attention_mask=keep) if padding else None
    weights = torch.randn(2, 13, 4, 8, generator=generator, dtype=torch.float64) * keep[:, :, None, None]
    ours = torch.autograd.grad((s2_attention(*tensors, mask) * weights).sum(), tensors)
    theirs = torch.autograd.grad((reference(*tensors, keep) * weights).sum(), tensors)
    for got, expected in zip(ours, theirs, strict=True):
        torch.testing.assert_close(got, expected)


def _logits(model, input_ids, **kwargs):
    with torch.no_grad():
        return model(input_ids=input_ids, use_cache=False, **kwargs).logits


def _ids(model, shape=(2, 24), seed=0):
    return torch.randint(3, model.config.vocab_size, shape, generator=torch.Generator().manual_seed(seed))


def test_trains_with_groups_and_evaluates_with_full_attention(tiny_llama_path):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
    ids = _ids(model)
    plain_train = _logits(model.train(), ids)
    plain_eval = _logits(model.eval(), ids)
    torch.testing.assert_close(plain_train, plain_eval)  # no dropout: train mode alone changes nothing
    use_shift_short_attention(model)
    assert model.config._attn_implementation == S2_SDPA
    assert not torch.allclose(_logits(model.train(), ids), plain_train, atol=1e-4)
    torch.testing.assert_close(_logits(model.eval(), ids), plain_eval)
    use_shift_short_attention(model, enabled=False)  # switched back: plain SDPA in training too
    assert model.config._attn_implementation == "sdpa"
    torch.testing.assert_close(_logits(model.train(), ids), plain_train)


def test_only_the_instance_that_asked_changes(tiny_llama_path):
    shifted = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32).train()
    other = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32).train()
    ids = _ids(other)
    before = _logits(other, ids)
    use_shift_short_attention(shifted)
    assert other.config._attn_implementation == "sdpa"
    assert AttentionInterface._global_mapping["sdpa"] is sdpa_attention_forward
    assert ALL_ATTENTION_FUNCTIONS["sdpa"] is sdpa_attention_forward
    torch.testing.assert_close(_logits(other, ids), before)
    assert not torch.allclose(_logits(shifted, ids), before, atol=1e-4)
    fresh = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32).train()
    assert fresh.config._attn_implementation == "sdpa"
    torch.testing.assert_close(_logits(fresh, ids), before)


def test_a_vision_language_model_shifts_its_text_model_only(tiny_family):
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_family("gemma3_vlm"), dtype=torch.float32)
    ids = torch.randint(3, 200, (2, 24), generator=torch.Generator().manual_seed(0))  # text tokens, no image
    plain_train, plain_eval = _logits(model.train(), ids), _logits(model.eval(), ids)
    use_shift_short_attention(model)
    assert model.config.get_text_config()._attn_implementation == S2_SDPA
    assert model.config.vision_config._attn_implementation == "sdpa"  # the vision tower is not causal
    assert not torch.allclose(_logits(model.train(), ids), plain_train, atol=1e-4)
    torch.testing.assert_close(_logits(model.eval(), ids), plain_eval)


def test_packed_sequences_stay_apart(tiny_llama_path):
    """Two sequences packed in one 24-token row (12 + 12): the shifted heads' group [9, 15) spans the boundary,
    and the packed mask still keeps the second sequence from seeing the first."""
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
    use_shift_short_attention(model)
    model.train()
    positions = torch.cat([torch.arange(12), torch.arange(12)])[None]
    first, second = _ids(model, (1, 12), seed=1), _ids(model, (1, 12), seed=2)
    other_first = _ids(model, (1, 12), seed=3)
    packed = _logits(model, torch.cat([first, second], 1), position_ids=positions)
    changed = _logits(model, torch.cat([other_first, second], 1), position_ids=positions)
    torch.testing.assert_close(packed[:, 12:], changed[:, 12:])
    assert not torch.allclose(packed[:, :12], changed[:, :12], atol=1e-4)


def _fit(path, **keys):
    cfg = build_config({"model_name_or_path": str(path), "template": "chatml", "shift_attn": True, **keys})
    return check_model_fit(cfg.model, cfg.finetuning, None, "train")


def test_a_model_that_fits_passes(tiny_llama_path):
    assert _fit(tiny_llama_path).auto_class == "AutoModelForCausalLM"


@pytest.mark.parametrize("family,message", [
    ("gemma2", "Gemma2ForCausalLM does not: remove `shift_attn`"),  # softcapped attention: no SDPA
    ("t5", "is an encoder-decoder: remove `shift_attn`"),
])
def test_refused_before_weights_load(tiny_family, family, message):
    with pytest.raises(LmforgeError, match=message):
        _fit(tiny_family(family))


@pytest.mark.parametrize("keys", [{"attn_implementation": "eager"}, {"flash_attn": "fa2"}])
def test_refused_with_another_attention(tiny_llama_path, keys):
    with pytest.raises(ConfigError, match=r"`shift_attn` runs on SDPA.*set `attn_implementation: sdpa`"):
        _fit(tiny_llama_path, **keys)


def test_refused_on_a_model_already_on_eager(tiny_llama_path):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, attn_implementation="eager")
    with pytest.raises(LmforgeError, match="this model's attention is `eager`"):
        use_shift_short_attention(model)
