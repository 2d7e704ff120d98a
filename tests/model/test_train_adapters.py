"""Every adapter option trains a few steps through `run_sft` and saves something peft (or transformers) reloads."""

import json

import pytest
import torch
from peft import PeftModel
from rich.console import Console
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

from lmforge.config import build_config
from lmforge.model.lora import PISSA_INIT_DIR
from lmforge.train.runner import run_training as run_sft
from tests.conftest import ROOT

BASE = {"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "dataset": "identity",
        "dataset_dir": str(ROOT / "examples" / "data"), "max_samples": 8, "cutoff_len": 64, "max_steps": 2,
        "per_device_train_batch_size": 4, "learning_rate": 1e-2, "logging_steps": 1, "report_to": "none",
        "overwrite_output_dir": True}
PROBE = torch.tensor([[5, 17, 42, 99, 7, 3]])


def train(tmp_path, name, **keys):
    out = tmp_path / name
    summary = run_sft(build_config({**BASE, "output_dir": str(out), **keys}), Console(quiet=True))
    assert summary["steps"] == 2
    return out


@torch.inference_mode()
def logits(model):
    return model.eval()(PROBE).logits


@pytest.fixture(scope="module")
def base_logits(tiny_llama_path):
    return logits(AutoModelForCausalLM.from_pretrained(tiny_llama_path))


def reload(tiny_llama_path, adapter):
    return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama_path), adapter)


LORA_VARIANTS = {
    "lora": ({}, {}),
    "dora": ({"use_dora": True}, {"use_dora": True}),
    "rslora": ({"use_rslora": True}, {"use_rslora": True}),
    "loraplus": ({"loraplus_lr_ratio": 16.0}, {}),
    "additional_target": ({"additional_target": "norm", "lora_target": "q_proj,v_proj"},
                          {"modules_to_save": ["norm"], "target_modules": ["q_proj", "v_proj"]}),
}


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(LORA_VARIANTS))
def test_lora_variants_train_and_reload(variant, tmp_path, tiny_llama_path, base_logits):
    keys, expected_config = LORA_VARIANTS[variant]
    out = train(tmp_path, variant, **keys)
    config = json.loads((out / "adapter_config.json").read_text())
    for key, value in expected_config.items():
        assert sorted(config[key]) == sorted(value) if isinstance(value, list) else config[key] == value
    assert config["task_type"] == "CAUSAL_LM"
    assert not torch.allclose(logits(reload(tiny_llama_path, out)), base_logits)


@pytest.mark.slow
def test_pissa_adapter_is_converted_to_fit_the_original_model(tmp_path, tiny_llama_path, base_logits):
    """With a learning rate far below float32's resolution (lmforge refuses 0) the trained PiSSA adapter is its
    initialisation, which reproduces the base model.
    Saved unconverted, peft would decompose the original weights again on reload, and PiSSA's fast SVD
    (pissa_iter 16, randomized) gives other components: logits off by ~0.09 on this model."""
    out = train(tmp_path, "pissa", pissa_init=True, learning_rate=1e-30)
    assert not (out / PISSA_INIT_DIR).exists()
    assert torch.allclose(logits(reload(tiny_llama_path, out)), base_logits, atol=1e-4)


@pytest.mark.slow
def test_adapter_chains_merge_all_but_the_last_or_create_a_new_one(tmp_path, tiny_llama_path):
    first, second = train(tmp_path, "first"), train(tmp_path, "second")
    resumed = train(tmp_path, "resumed", adapter_name_or_path=f"{first},{second}")
    created = train(tmp_path, "created", adapter_name_or_path=f"{first},{second}", create_new_adapter=True)

    def merged(*adapters):
        model = AutoModelForCausalLM.from_pretrained(tiny_llama_path)
        for adapter in adapters:
            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
        return model

    # `resumed` continued `second` on base + first; `created` is a new adapter on base + first + second
    assert not torch.allclose(logits(merged(first, resumed)), logits(merged(first, second)))
    assert not torch.allclose(logits(merged(first, second, created)), logits(merged(first, second)))
    assert torch.isfinite(logits(merged(first, second, created))).all()


@pytest.mark.slow
def test_full_and_freeze_save_whole_models(tmp_path, base_logits):
    for method, keys in (("full", {}), ("freeze", {"freeze_trainable_layers": 1, "freeze_extra_modules": "norm"})):
        out = train(tmp_path, method, finetuning_type=method, **keys)
        model = AutoModelForCausalLM.from_pretrained(out)
        assert not torch.allclose(logits(model), base_logits)
        summary = json.loads((out / "train_summary.json").read_text())
        assert summary["trainable_params"] < summary["total_params"] if method == "freeze" else True


@pytest.mark.slow
def test_new_tokens_resize_and_train_the_embeddings(tmp_path, tiny_llama_path):
    out = train(tmp_path, "tokens", add_special_tokens="<|tool|>,<|tool_end|>")
    config = json.loads((out / "adapter_config.json").read_text())
    assert sorted(config["modules_to_save"]) == ["embed_tokens", "lm_head"]
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_path)
    base.resize_token_embeddings(base.config.vocab_size + 2)
    model = PeftModel.from_pretrained(base, out)
    assert model.get_input_embeddings().weight.shape[0] == base.config.vocab_size


@pytest.mark.slow
def test_seq2seq_lora_infers_its_task_type(tmp_path):
    out = train(tmp_path, "t5", model_name_or_path="builtin:tiny-t5", template="seq2seq")
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["task_type"] == "SEQ_2_SEQ_LM"
    from lmforge.hub.builtin import builtin_path

    model = PeftModel.from_pretrained(AutoModelForSeq2SeqLM.from_pretrained(builtin_path("builtin:tiny-t5")), out)
    assert type(model.get_base_model()).__name__ == "T5ForConditionalGeneration"
