"""An adapter trained on another base model is refused before any weight loads, naming both models."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from lmforge.data.templates import get_template
from lmforge.errors import ModelError
from lmforge.model.adapter_fit import safetensors_shapes
from lmforge.model.fit import check_model_fit
from tests.conftest import run_cli
from tests.model.conftest import config_for


def save_lora(base_path, out_dir, *, extra_rows: int = 0):
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    if extra_rows:  # an adapter trained after `add_tokens`: embeddings and head grew
        model.resize_token_embeddings(model.get_input_embeddings().weight.shape[0] + extra_rows)
    config = LoraConfig(r=4, target_modules=["q_proj", "gate_proj", "down_proj"],
                        modules_to_save=["embed_tokens"] if extra_rows else None)
    get_peft_model(model, config).save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="module")
def llama_adapter(tiny_family, tmp_path_factory):
    return save_lora(tiny_family("llama"), tmp_path_factory.mktemp("llama_lora"))


def test_an_adapter_of_another_base_fails_naming_both_models_and_the_layer(tiny_family, llama_adapter):
    qwen2 = tiny_family("qwen2")  # same attention sizes as the tiny llama, a narrower MLP
    cfg = config_for(qwen2, adapter_name_or_path=str(llama_adapter))
    with pytest.raises(ModelError) as caught:
        check_model_fit(cfg.model, cfg.finetuning, get_template("chatml"), "chat")
    message = str(caught.value)
    assert f"adapter {llama_adapter} was trained on {tiny_family('llama')}, not on {qwen2}" in message
    assert "mlp.gate_proj` has output size 128 in the base, 176 in the adapter" in message
    assert "Set `model_name_or_path` to the adapter's base model" in message
    for command in ("train", "export", "check"):
        with pytest.raises(ModelError, match="was trained on"):
            check_model_fit(cfg.model, cfg.finetuning, get_template("chatml"), command)


def test_an_adapter_of_another_architecture_has_no_module_in_the_base(tiny_family, llama_adapter):
    cfg = config_for(tiny_family("chatglm_like"), adapter_name_or_path=str(llama_adapter))
    with pytest.raises(ModelError, match="none of its modules exists in GPTNeoXForCausalLM"):
        check_model_fit(cfg.model, cfg.finetuning, get_template("chatml"), "chat")


def test_adapters_of_the_same_base_pass_even_with_grown_vocabulary(tiny_family, llama_adapter, tmp_path):
    llama = tiny_family("llama")
    grown = save_lora(llama, tmp_path / "grown", extra_rows=3)
    assert safetensors_shapes(grown / "adapter_model.safetensors")  # the header is readable without torch
    cfg = config_for(llama, adapter_name_or_path=f"{llama_adapter},{grown}")
    assert check_model_fit(cfg.model, cfg.finetuning, get_template("chatml"), "chat").kind == "causal_lm"


def test_chat_with_a_foreign_adapter_prints_one_error_not_a_traceback(tiny_family, llama_adapter, tmp_path):
    config = tmp_path / "chat.yaml"
    config.write_text(f"model_name_or_path: {tiny_family('qwen2')}\ntemplate: chatml\n"
                      f"adapter_name_or_path: {llama_adapter}\n")
    result = run_cli("chat", str(config), "--prompt", "Hi")
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "was trained on" in output and "Traceback" not in output and "size mismatch" not in output
