"""LLaMA-Factory's model and generation switches do what they do there: split_special_tokens,
print_param_status, moe_aux_loss_coef, use_kv_cache, skip_special_tokens, and the notices of use_unsloth,
use_unsloth_gc and use_v1_kernels."""

import json
import logging

import pytest
import torch
from transformers import AutoModelForCausalLM, Qwen2MoeConfig, Qwen2MoeForCausalLM

from lmforge.config import build_config
from lmforge.data.templates.template import Message
from lmforge.errors import ModelError
from lmforge.infer.factory import create_engine
from lmforge.model.adapters import parameter_status
from lmforge.model.loading import load_model, load_tokenizer

TINY = {"model_name_or_path": "builtin:tiny-llama", "template": "chatml"}


def test_split_special_tokens_reads_special_token_text_as_plain_text():
    plain = load_tokenizer(build_config(TINY).model)
    split = load_tokenizer(build_config({**TINY, "split_special_tokens": True}).model)
    eos = plain.eos_token
    assert plain.encode(f"hi{eos}", add_special_tokens=False)[-1] == plain.eos_token_id
    pieces = split.encode(f"hi{eos}", add_special_tokens=False)
    assert split.eos_token_id not in pieces and len(pieces) > 2


def test_print_param_status_lists_every_parameter_with_dtype_device_and_training(tiny_llama_path):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path)
    for name, parameter in model.named_parameters():
        parameter.requires_grad = name.startswith("lm_head")
    lines = parameter_status(model).splitlines()
    assert len(lines) == len(list(model.parameters()))
    assert "lm_head.weight: float32, cpu, trainable" in lines
    assert "model.embed_tokens.weight: float32, cpu, frozen" in lines


def _tiny_moe(path):
    config = Qwen2MoeConfig(vocab_size=64, hidden_size=16, intermediate_size=32, moe_intermediate_size=8,
                            shared_expert_intermediate_size=8, num_hidden_layers=2, num_attention_heads=2,
                            num_key_value_heads=2, num_experts=4, num_experts_per_tok=2)
    torch.manual_seed(0)
    Qwen2MoeForCausalLM(config).save_pretrained(path)
    return str(path)


def test_moe_aux_loss_coef_adds_the_weighted_router_loss(tmp_path):
    path = _tiny_moe(tmp_path / "moe")
    ids = torch.randint(0, 64, (2, 12), generator=torch.Generator().manual_seed(1))

    def loss(coef):
        group = build_config({"model_name_or_path": path, **({"moe_aux_loss_coef": coef} if coef else {})}).model
        model = load_model(group, dtype=torch.float32, cutoff_len=64)
        return model(input_ids=ids, labels=ids)

    plain, weighted = loss(None), loss(0.5)
    assert plain.aux_loss is None and weighted.aux_loss is not None
    torch.testing.assert_close(weighted.loss, plain.loss + 0.5 * weighted.aux_loss)


def test_moe_aux_loss_coef_on_a_dense_model_is_refused_before_loading(tiny_llama_path):
    group = build_config({"model_name_or_path": str(tiny_llama_path), "moe_aux_loss_coef": 0.01}).model
    with pytest.raises(ModelError, match=r"model_type `llama` has no router auxiliary loss.*remove the key"):
        load_model(group, dtype=torch.float32, cutoff_len=64)


def _engine(**keys):
    return create_engine(build_config({**TINY, "do_sample": False, "max_new_tokens": 8, **keys}))


def test_use_kv_cache_false_decodes_without_the_cache_to_the_same_answer():
    cached, uncached = _engine(), _engine(use_kv_cache=False)
    try:
        assert cached.model.generation_config.use_cache is True
        assert uncached.model.generation_config.use_cache is False
        question = [Message("user", "Tell me about the sea.")]
        assert uncached.chat(question) == cached.chat(question)
    finally:
        cached.close()
        uncached.close()


def test_skip_special_tokens_false_keeps_special_tokens_in_answers(tiny_tokenizer):
    from lmforge.infer.stops import answer_text, special_ids

    ids = tiny_tokenizer.encode("hi", add_special_tokens=False)
    with_bos = [tiny_tokenizer.bos_token_id, *ids]
    assert answer_text(tiny_tokenizer, with_bos) == "hi"
    assert answer_text(tiny_tokenizer, with_bos, special_ids(tiny_tokenizer)).startswith(tiny_tokenizer.bos_token)
    engine = _engine(skip_special_tokens=False)
    try:
        assert tiny_tokenizer.bos_token_id in engine.kept_special_ids
    finally:
        engine.close()


@pytest.mark.parametrize(("key", "instead"), [("use_unsloth", "Unsloth is not used"),
                                              ("use_unsloth_gc", "transformers'"),
                                              ("use_v1_kernels", "own speed path")])
def test_other_libraries_speed_switches_say_what_lmforge_uses(key, instead, tiny_llama_path, caplog):
    group = build_config({"model_name_or_path": str(tiny_llama_path), key: True}).model
    with caplog.at_level(logging.WARNING, logger="lmforge.model.speedups"):
        load_model(group, dtype=torch.float32, cutoff_len=64)
    notices = [r.getMessage() for r in caplog.records if r.name == "lmforge.model.speedups"]
    assert len(notices) == 1 and notices[0].startswith(f"{key}: ") and instead in notices[0]
    caplog.clear()
    load_model(build_config({"model_name_or_path": str(tiny_llama_path)}).model, dtype=torch.float32, cutoff_len=64)
    assert not [r for r in caplog.records if r.name == "lmforge.model.speedups"]


@pytest.mark.parametrize(("family", "key", "attribute"), [("gemma3", "image_do_pan_and_scan", "do_pan_and_scan"),
                                                         ("intern_vl", "crop_to_patches", "crop_to_patches")])
def test_image_crop_keys_make_the_processor_encode_crops_of_a_wide_image(tmp_path, family, key, attribute):
    from PIL import Image

    from lmforge.model.loading import load_processor, model_kind
    from lmforge.testing.tiny_vlm import build_tiny_vlm

    folder = str(build_tiny_vlm(tmp_path / family, family))
    if family == "gemma3":  # the pan-and-scan settings every Gemma 3 checkpoint's image processor has
        config = tmp_path / family / "processor_config.json"
        saved = json.loads(config.read_text())
        saved["image_processor"].update(pan_and_scan_min_crop_size=256, pan_and_scan_max_num_crops=4,
                                        pan_and_scan_min_ratio_to_activate=1.2)
        config.write_text(json.dumps(saved))
    wide = Image.new("RGB", (1200, 300), (120, 30, 200))

    def crops(**keys):
        group = build_config({"model_name_or_path": folder, **keys}).model
        processor = load_processor(group, model_kind(group))
        return processor, processor.image_processor(images=[wide], return_tensors="pt")["pixel_values"].shape[0]

    plain, whole = crops()
    cropped, more = crops(**{key: True})
    assert not getattr(plain.image_processor, attribute) and getattr(cropped.image_processor, attribute) is True
    assert whole == 1 and more > 1
    other, missing = (("crop_to_patches", "crop_to_patches") if family == "gemma3"
                      else ("image_do_pan_and_scan", "do_pan_and_scan"))
    with pytest.raises(ModelError, match=f"`{other}`: the image processor .* has no `{missing}`"):
        crops(**{other: True})
