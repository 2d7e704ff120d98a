"""The model class comes from the checkpoint's config: a VLM stays a VLM, T5 is seq2seq, ChatGLM is causal."""

import pytest
import torch
from transformers import AutoConfig, PretrainedConfig

from lmforge.errors import ModelError
from lmforge.model.kind import detect_kind
from lmforge.model.loading import model_kind
from tests.model.conftest import config_for, load_configured

EXPECTED = {
    # family: (kind, class transformers builds, peft task type)
    "llama": ("causal_lm", "LlamaForCausalLM", "CAUSAL_LM"),
    "qwen2": ("causal_lm", "Qwen2ForCausalLM", "CAUSAL_LM"),
    "gemma3_text": ("causal_lm", "Gemma3ForCausalLM", "CAUSAL_LM"),
    "gemma3_vlm": ("image_text_to_text", "Gemma3ForConditionalGeneration", "CAUSAL_LM"),
    "chatglm_like": ("causal_lm", "GPTNeoXForCausalLM", "CAUSAL_LM"),
    "t5": ("seq2seq_lm", "T5ForConditionalGeneration", "SEQ_2_SEQ_LM"),
}


@pytest.mark.parametrize("family", list(EXPECTED))
def test_each_family_loads_with_the_class_its_config_calls_for(family, tiny_family):
    kind_name, class_name, task_type = EXPECTED[family]
    cfg = config_for(tiny_family(family))
    kind = model_kind(cfg.model)
    assert (kind.kind, kind.peft_task_type) == (kind_name, task_type)
    assert kind.architecture == class_name
    model = load_configured(cfg, dtype=torch.float32)
    assert type(model).__name__ == class_name


def test_the_reason_is_given(tiny_family):
    assert model_kind(config_for(tiny_family("gemma3_vlm")).model).reason == (
        "model_type `gemma3` is an image-text-to-text architecture in transformers")
    assert model_kind(config_for(tiny_family("t5")).model).reason == (
        "the config of model_type `t5` says is_encoder_decoder")


def test_model_class_overrides(tiny_family):
    cfg = config_for(tiny_family("gemma3_vlm"), model_class="AutoModelForCausalLM")
    kind = model_kind(cfg.model)
    assert kind.auto_class == "AutoModelForCausalLM"
    assert kind.reason == "`model_class: AutoModelForCausalLM` set in the config"


def test_audio_text_and_composite_omni_models():
    audio = detect_kind(AutoConfig.for_model("qwen2_audio"))
    assert (audio.kind, audio.auto_class) == ("audio_text", "AutoModelForMultimodalLM")
    assert audio.peft_task_type == "CAUSAL_LM"
    omni = detect_kind(AutoConfig.for_model("qwen2_5_omni"))
    assert (omni.auto_class, omni.submodule) == ("AutoModelForMultimodalLM", "thinker")


def test_remote_code_decoder_that_also_lists_seq2seq_is_causal():
    """ChatGLM's auto_map names AutoModelForSeq2SeqLM too; its config says it is not encoder-decoder."""
    config = PretrainedConfig(auto_map={"AutoModelForCausalLM": "modeling_chatglm.ChatGLMForConditionalGeneration",
                                        "AutoModelForSeq2SeqLM": "modeling_chatglm.ChatGLMForConditionalGeneration"})
    config.model_type = "chatglm"
    kind = detect_kind(config)
    assert (kind.kind, kind.peft_task_type) == ("causal_lm", "CAUSAL_LM")


def test_unknown_architecture_explains():
    config = PretrainedConfig()
    config.model_type = "vit"
    with pytest.raises(ModelError, match=r"model_type `vit` has no text-generation class in transformers"):
        detect_kind(config)
