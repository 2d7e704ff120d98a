"""LLaMA-Factory keys of issue #20 that change what a run does, shown on tiny models with the real libraries."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from lmforge.config import build_config
from lmforge.errors import ConfigError, ModelError
from lmforge.hub.builtin import builtin_path
from lmforge.infer.factory import create_engine

TINY = "builtin:tiny-llama"


def _save_adapter(folder):
    """A LoRA adapter on tiny-llama whose B matrices are not zero, so merging it changes the weights."""
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(builtin_path(TINY)),
                           LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
    model.save_pretrained(folder)


def _q_proj(engine):
    return engine.model.model.layers[0].self_attn.q_proj.weight


def test_adapter_folder_loads_each_adapter_from_its_subfolder(tmp_path):
    _save_adapter(tmp_path / "run" / "checkpoint-2")
    base = create_engine(build_config({"model_name_or_path": TINY, "template": "chatml"}))
    merged = create_engine(build_config({"model_name_or_path": TINY, "template": "chatml",
                                         "adapter_name_or_path": str(tmp_path / "run"),
                                         "adapter_folder": "checkpoint-2"}))
    direct = create_engine(build_config({"model_name_or_path": TINY, "template": "chatml",
                                         "adapter_name_or_path": str(tmp_path / "run" / "checkpoint-2")}))
    try:
        assert not torch.equal(_q_proj(merged), _q_proj(base))
        assert torch.equal(_q_proj(merged), _q_proj(direct))
    finally:
        for engine in (base, merged, direct):
            engine.close()
    with pytest.raises(ModelError, match=r"without config\.json or adapter_config\.json"):  # the run folder itself
        create_engine(build_config({"model_name_or_path": TINY, "template": "chatml",
                                    "adapter_name_or_path": str(tmp_path / "run")}))
    with pytest.raises(ConfigError, match="set `adapter_name_or_path`"):
        build_config({"adapter_folder": "checkpoint-2"})
