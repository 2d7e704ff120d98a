"""LoRA targets per architecture, checked against the model's real modules; wrong task types explained."""

import pytest
import torch

from lmforge.errors import ModelError
from lmforge.model.fit import model_skeleton
from lmforge.model.kind import detect_kind
from lmforge.model.loading import load_model_config
from lmforge.model.lora import build_lora_config, check_task_type
from lmforge.model.targets import linear_module_names, lora_targets
from tests.model.conftest import config_for

ALL_TARGETS = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gemma3_text": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gemma3_vlm": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "chatglm_like": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "t5": ["q", "k", "v", "o", "wi_0", "wi_1", "wo"],
}


def skeleton(path, **keys):
    cfg = config_for(path, **keys)
    config = load_model_config(cfg.model)
    kind = detect_kind(config)
    return model_skeleton(config, kind, trust_remote_code=False), cfg, kind


@pytest.mark.parametrize("family", list(ALL_TARGETS))
def test_all_finds_every_linear_layer_of_the_language_model(family, tiny_family):
    model, cfg, _ = skeleton(tiny_family(family))
    targets = lora_targets(model, ["all"], cfg.finetuning)
    assert targets.target_modules == ALL_TARGETS[family]
    assert "lm_head" not in targets.target_modules


def test_vlm_vision_tower_and_projector_stay_out_unless_asked(tiny_family):
    model, cfg, kind = skeleton(tiny_family("gemma3_vlm"))
    lora = build_lora_config(model, cfg.finetuning, kind)
    assert lora.exclude_modules == r"^(model\.vision_tower|model\.multi_modal_projector)(\..*)?$"
    peft_model = __import__("peft").get_peft_model(model, lora)
    adapted = {name.removesuffix(".lora_A") for name, _ in peft_model.named_modules() if name.endswith("lora_A")}
    assert adapted and all(".language_model." in name for name in adapted)

    model, cfg, kind = skeleton(tiny_family("gemma3_vlm"), freeze_vision_tower=False,
                                freeze_multi_modal_projector=False)
    lora = build_lora_config(model, cfg.finetuning, kind)
    assert lora.exclude_modules is None
    assert {"fc1", "fc2", "out_proj"} <= set(lora.target_modules)  # SigLIP's linear layers join
    assert lora.modules_to_save == ["multi_modal_projector"]  # trained in full


def test_named_targets_are_checked_against_real_module_names(tiny_family):
    """The seed bug: T5's names on a ChatGLM-style model; the message lists the model's own."""
    model, cfg, _ = skeleton(tiny_family("chatglm_like"))
    assert lora_targets(model, ["query_key_value"], cfg.finetuning).target_modules == ["query_key_value"]
    with pytest.raises(ModelError) as err:
        lora_targets(model, ["q", "v"], cfg.finetuning)
    assert str(err.value) == ("`lora_target` q, v matches no module of GPTNeoXForCausalLM; its linear layers are: "
                              "query_key_value, dense, dense_h_to_4h, dense_4h_to_h (or use `lora_target: all`)")


def test_wrong_task_type_names_the_architecture_and_the_right_one(tiny_family):
    """The seed bug: SEQ_2_SEQ_LM on a decoder-only model crashes in forward() with decoder_input_ids."""
    _, cfg, kind = skeleton(tiny_family("chatglm_like"), lora_task_type="SEQ_2_SEQ_LM")
    with pytest.raises(ModelError) as err:
        check_task_type(kind, cfg.finetuning)
    assert str(err.value) == (
        "`lora_task_type: SEQ_2_SEQ_LM` does not fit GPTNeoXForCausalLM: it is a decoder-only (causal) language "
        "model (model_type `gpt_neox` is a decoder-only language model), so peft would pass `decoder_input_ids`, "
        "which its forward() does not accept. Use `lora_task_type: CAUSAL_LM`, or remove the key and lmforge "
        "infers it")
    _, cfg, kind = skeleton(tiny_family("t5"), lora_task_type="CAUSAL_LM")
    with pytest.raises(ModelError, match=r"does not fit T5ForConditionalGeneration: it is an encoder-decoder model "
                                         r".*Use `lora_task_type: SEQ_2_SEQ_LM`"):
        check_task_type(kind, cfg.finetuning)


def test_unknown_additional_target_lists_candidates(tiny_family):
    model, cfg, kind = skeleton(tiny_family("llama"), additional_target="embed_tokns")
    with pytest.raises(ModelError, match=r"`additional_target` embed_tokns matches no module of LlamaForCausalLM"):
        build_lora_config(model, cfg.finetuning, kind)


def test_linear_names_skip_the_output_head(tiny_family):
    model, _, _ = skeleton(tiny_family("qwen2"))  # tied embeddings: lm_head shares the input embedding
    assert "lm_head" not in linear_module_names(model)
    assert isinstance(model.get_output_embeddings(), torch.nn.Linear)


def test_a_linear_layer_in_a_list_is_named_with_its_list():
    """Gemma 3n keeps linear layers in lists: a bare `0` would make peft adapt every `layers.0` too."""
    from peft import LoraConfig, get_peft_model

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList([torch.nn.ModuleDict({"proj": torch.nn.Linear(4, 4)})])
            self.projections = torch.nn.ModuleList([torch.nn.Linear(4, 4)])

    names = linear_module_names(Model())
    assert names == ["proj", "projections.0"]
    adapted = get_peft_model(Model(), LoraConfig(target_modules=names, r=2))
    assert {name for name, _ in adapted.named_modules() if name.endswith("lora_A")} == {
        "base_model.model.layers.0.proj.lora_A", "base_model.model.projections.0.lora_A"}
