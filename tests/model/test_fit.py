"""Checks that run before any weight loads: template modality, QLoRA on CPU, freeze names, preflight."""

import pytest

from lmforge.config import build_config
from lmforge.data.templates import get_template
from lmforge.errors import ModelError, TemplateError
from lmforge.model.fit import check_model_fit, model_skeleton
from lmforge.model.freeze import apply_freeze, layer_stacks
from lmforge.model.kind import detect_kind
from lmforge.model.loading import load_model_config
from lmforge.preflight import preflight
from tests.model.conftest import config_for


def test_text_template_on_a_vlm_fails_with_the_fix(tiny_family):
    cfg = config_for(tiny_family("gemma3_vlm"))
    with pytest.raises(TemplateError, match=r"template `chatml` is a text template, but .* is a vision/audio-language "
                                            r"checkpoint \(Gemma3ForConditionalGeneration: .*multimodal template "
                                            r"\(one of `gemma3`\)"):
        check_model_fit(cfg.model, cfg.finetuning, get_template("chatml"), "chat")
    assert check_model_fit(cfg.model, cfg.finetuning, get_template("gemma3"), "chat").kind == "image_text_to_text"


def test_multimodal_template_on_a_text_checkpoint_fails_with_the_fix(tiny_family):
    """Gemma-3 1B is text-only; a multimodal template on it is LLaMA-Factory issue 9671."""
    cfg = config_for(tiny_family("gemma3_text"))
    with pytest.raises(TemplateError, match=r"template `qwen2_vl` is a multimodal template, but .* is a "
                                            r"decoder-only \(causal\) language model \(Gemma3ForCausalLM"):
        check_model_fit(cfg.model, cfg.finetuning, get_template("qwen2_vl"), "chat")


def test_preflight_catches_the_chatglm_seed_bug_from_lmforge_check(tiny_family):
    cfg = config_for(tiny_family("chatglm_like"), lora_task_type="SEQ_2_SEQ_LM")
    with pytest.raises(ModelError, match=r"`lora_task_type: SEQ_2_SEQ_LM` does not fit GPTNeoXForCausalLM"):
        preflight(cfg, "check")
    cfg = config_for(tiny_family("chatglm_like"), lora_target="q,v")
    with pytest.raises(ModelError, match=r"its linear layers are: query_key_value, dense, dense_h_to_4h"):
        preflight(cfg, "check")


def skeleton(path, **keys):
    cfg = config_for(path, finetuning_type="freeze", **keys)
    config = load_model_config(cfg.model)
    return model_skeleton(config, detect_kind(config), trust_remote_code=False), cfg


def trainable_names(model):
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_freeze_last_or_first_layers_named_modules_and_extras(tiny_family):
    model, cfg = skeleton(tiny_family("llama"), freeze_trainable_layers=1)
    apply_freeze(model, cfg.finetuning)
    assert trainable_names(model) and all(name.startswith("model.layers.1.") for name in trainable_names(model))

    model, cfg = skeleton(tiny_family("llama"), freeze_trainable_layers=-1, freeze_trainable_modules="mlp",
                          freeze_extra_modules="embed_tokens,norm")
    apply_freeze(model, cfg.finetuning)
    names = trainable_names(model)
    assert {n for n in names if n.startswith("model.layers.")} == {
        f"model.layers.0.mlp.{p}.weight" for p in ("gate_proj", "up_proj", "down_proj")}
    assert {"model.embed_tokens.weight", "model.norm.weight"} <= names


def test_freeze_errors_name_what_exists(tiny_family):
    model, cfg = skeleton(tiny_family("llama"), freeze_trainable_layers=3)
    with pytest.raises(ModelError, match=r"`freeze_trainable_layers: 3` does not fit LlamaForCausalLM, whose "
                                         r"`model.layers` has 2 layers"):
        apply_freeze(model, cfg.finetuning)
    model, cfg = skeleton(tiny_family("llama"), freeze_trainable_modules="ffn")
    with pytest.raises(ModelError, match=r"`freeze_trainable_modules` ffn is not a module inside the layers of "
                                         r"LlamaForCausalLM; a layer holds: self_attn, mlp, input_layernorm, "):
        apply_freeze(model, cfg.finetuning)


def test_freeze_on_a_vlm_trains_language_layers_only(tiny_family):
    model, cfg = skeleton(tiny_family("gemma3_vlm"), freeze_trainable_layers=1)
    assert layer_stacks(model) == ["model.vision_tower.encoder.layers", "model.language_model.layers"]
    apply_freeze(model, cfg.finetuning)
    assert all(name.startswith("model.language_model.layers.1.") for name in trainable_names(model))


def test_t5_freeze_trains_the_last_block_of_both_stacks(tiny_family):
    model, cfg = skeleton(tiny_family("t5"), freeze_trainable_layers=1)
    apply_freeze(model, cfg.finetuning)
    assert {name.split(".")[0] + "." + name.split(".")[2] for name in trainable_names(model)} == {
        "encoder.1", "decoder.1"}


def test_builtin_registered_name_gets_its_template():
    cfg = build_config({"model_name_or_path": "Tiny-Random-T5"})
    assert preflight(cfg, "chat").is_seq2seq
