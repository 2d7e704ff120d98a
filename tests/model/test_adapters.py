import pytest
import torch
from transformers import AutoModelForCausalLM

from lmforge.errors import ModelError
from lmforge.model.adapters import linear_module_names, lora_targets


@pytest.fixture(scope="module")
def tiny_model(tiny_llama_path):
    return AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)


def test_all_finds_every_linear_layer_but_the_head(tiny_model):
    assert linear_module_names(tiny_model) == ["q_proj", "k_proj", "v_proj", "o_proj",
                                               "gate_proj", "up_proj", "down_proj"]
    assert "lm_head" not in lora_targets(tiny_model, ["all"])


def test_named_targets_are_checked_against_real_module_names(tiny_model):
    assert lora_targets(tiny_model, ["q_proj", "v_proj"]) == ["q_proj", "v_proj"]
    with pytest.raises(ModelError, match=r"`lora_target` q, v matches no module of LlamaForCausalLM; "
                                         r"its linear layers are: q_proj, k_proj"):
        lora_targets(tiny_model, ["q", "v"])
