"""The VLM freeze flags for every tiny family, checked against the model skeleton before weights load."""

import pytest

from lmforge.config import build_config
from lmforge.errors import ModelError
from lmforge.model.adapters import apply_finetuning
from lmforge.model.components import model_components
from lmforge.model.fit import check_model_fit
from lmforge.testing.tiny_vlm import TINY_VLM_FAMILIES, model_auto_class


def fit(cfg):
    """The pre-loading check `lmforge train` runs, for one config."""
    return check_model_fit(cfg.model, cfg.finetuning, None, "train")


def config(folder, **keys):
    return build_config({"stage": "sft", "model_name_or_path": str(folder), "finetuning_type": "full", **keys})


@pytest.mark.parametrize("family", sorted(set(TINY_VLM_FAMILIES) - {"chameleon"}))
def test_training_the_tower_alone_freezes_everything_else(family, tiny_vlm):
    cfg = config(tiny_vlm(family), freeze_vision_tower=False, freeze_language_model=True)
    kind = check_model_fit(cfg.model, cfg.finetuning, None, "train")
    model = apply_finetuning(model_auto_class(family).from_pretrained(tiny_vlm(family)), cfg.finetuning, kind)
    parts = model_components(model)
    trainable = {name for name, param in model.named_parameters() if param.requires_grad}
    assert trainable and all(name.startswith(parts.towers) for name in trainable), family
    assert any(name.startswith(parts.towers) for name in trainable)


def test_a_projector_inside_the_tower_cannot_be_trained_alone(tiny_vlm):
    with pytest.raises(ModelError, match=r"no projector beside its tower `model.visual`.*freeze_vision_tower: false"):
        fit(config(tiny_vlm("qwen3_vl"), freeze_multi_modal_projector=False))


def test_freeze_flags_on_a_model_without_a_tower_are_refused(tiny_vlm):
    with pytest.raises(ModelError, match=r"no vision or audio tower .* cannot apply: remove them"):
        fit(config(tiny_vlm("chameleon"), freeze_vision_tower=False))
    fit(config(tiny_vlm("chameleon")))  # the defaults are fine: nothing to split


def test_freezing_every_part_is_refused(tiny_vlm):
    with pytest.raises(ModelError, match=r"every part of .* is frozen"):
        fit(config(tiny_vlm("llava"), freeze_language_model=True))


def test_phi4_multimodal_towers_in_its_embedding_layer_stay_out_of_lora_all(tiny_vlm):
    """transformers' `get_encoder` does not reach Phi-4-multimodal's towers: they sit in the decoder's embedding."""
    from lmforge.model.targets import lora_targets

    model = model_auto_class("phi4_multimodal").from_pretrained(tiny_vlm("phi4_multimodal"))
    parts = model_components(model)
    assert parts.towers == ("model.embed_tokens_extend.image_embed.img_processor",
                            "model.embed_tokens_extend.audio_embed.encoder")
    assert {"model.embed_tokens_extend.image_embed.img_projection_up",
            "model.embed_tokens_extend.audio_embed.up_proj_for_speech"} <= set(parts.projectors)
    assert "model.layers" in parts.language and not any(name.startswith("model.embed_tokens_extend")
                                                        for name in parts.language)
    targets = lora_targets(model, ["all"], config(tiny_vlm("phi4_multimodal")).finetuning)
    assert "qkv_proj" in targets.target_modules and "q_proj" not in targets.target_modules  # q_proj: towers only
    assert targets.exclude_modules and "img_processor" in targets.exclude_modules
