"""`load_processor`: a VLM's real processor through AutoProcessor, None for text-only models."""

import pytest

from lmforge.model.loading import load_processor, model_kind
from tests.model.conftest import config_for


def test_vlm_processor_is_loaded_with_a_pad_token(tmp_path):
    from lmforge.testing.tiny_vlm import build_tiny_vlm

    folder = build_tiny_vlm(tmp_path / "qwen2_vl", "qwen2_vl")
    cfg = config_for(folder)
    processor = load_processor(cfg.model, model_kind(cfg.model))
    assert type(processor).__name__ == "Qwen2VLProcessor"
    assert processor.tokenizer.pad_token is not None


def test_text_only_model_has_no_processor(tiny_family):
    cfg = config_for(tiny_family("llama"))
    assert load_processor(cfg.model, model_kind(cfg.model)) is None


def test_a_processor_missing_its_package_names_the_install(tmp_path, monkeypatch):
    from transformers.models.smolvlm import processing_smolvlm

    from lmforge.errors import ModelError
    from lmforge.testing.tiny_vlm import build_tiny_vlm

    folder = build_tiny_vlm(tmp_path / "smolvlm", "smolvlm")
    cfg = config_for(folder)
    monkeypatch.setattr(processing_smolvlm, "num2words", None)  # as when num2words is not installed
    with pytest.raises(ModelError, match=r"needs a package that is not installed: .*num2words.*lmforge\[multimodal\]"):
        load_processor(cfg.model, model_kind(cfg.model))
