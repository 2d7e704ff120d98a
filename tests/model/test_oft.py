"""`finetuning_type: oft`: peft's OFT adapters train, reload and merge; the merged weights are the base weights
rotated, so their singular values are the base's."""

import json

import pytest
import torch
from peft import PeftModel
from rich.console import Console
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

from lmforge.config import build_config
from lmforge.errors import ConfigError, ModelError
from lmforge.model.kind import detect_kind
from lmforge.model.oft import build_oft_config
from lmforge.train.runner import run_training
from tests.conftest import ROOT

TRAIN = {"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "dataset": "identity",
         "dataset_dir": str(ROOT / "examples" / "data"), "max_samples": 8, "cutoff_len": 64, "max_steps": 2,
         "per_device_train_batch_size": 4, "learning_rate": 5e-2, "report_to": "none", "overwrite_output_dir": True,
         "save_strategy": "no", "finetuning_type": "oft"}


@pytest.mark.slow
def test_oft_adapter_rotates_weights_keeping_their_singular_values(tmp_path, tiny_llama_path):
    out = tmp_path / "oft"
    run_training(build_config({**TRAIN, "output_dir": str(out), "oft_block_size": 16,
                               "oft_target": "q_proj,v_proj,down_proj", "module_dropout": 0.1}), Console(quiet=True))
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "OFT" and config["oft_block_size"] == 16 and config["module_dropout"] == 0.1
    assert sorted(config["target_modules"]) == ["down_proj", "q_proj", "v_proj"]
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_path)
    from lmforge.model.adapter_fit import check_adapter_fits  # what chat and export run first

    check_adapter_fits(AutoModelForCausalLM.from_pretrained(tiny_llama_path), str(out), "tiny")  # chat and export
    with pytest.raises(ModelError, match="none of its modules exists"):
        check_adapter_fits(GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=100)), str(out),
                           "another")
    merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama_path), out).merge_and_unload()
    for name in ("model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight"):
        before, after = base.get_parameter(name).detach(), merged.get_parameter(name).detach()
        moved = float((after - before).norm() / before.norm())
        stretched = float((torch.linalg.svdvals(after) - torch.linalg.svdvals(before)).norm() / before.norm())
        # peft's Cayley-Neumann series is orthogonal up to its truncation: measured 0.48 moved, 0.009 stretched
        assert moved > 0.1 and stretched < moved / 20
    untouched = "model.layers.0.self_attn.k_proj.weight"
    assert torch.equal(base.get_parameter(untouched), merged.get_parameter(untouched))


def test_oft_settings_are_checked_before_loading(tiny_llama_path):
    with pytest.raises(ConfigError, match="`oft_rank` or `oft_block_size`"):
        build_config({"finetuning_type": "oft", "oft_rank": 4, "oft_block_size": 16})
    with pytest.raises(ConfigError, match="only apply to `finetuning_type: oft`"):
        build_config({"finetuning_type": "lora", "oft_block_size": 16})
    cfg = build_config({"model_name_or_path": str(tiny_llama_path), "finetuning_type": "oft", "oft_block_size": 32})
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path)
    with pytest.raises(ModelError, match=r"must divide the input size .* input size 176"):
        build_oft_config(model, cfg.finetuning, detect_kind(model.config, "auto"))
    ranked = build_config({"finetuning_type": "oft", "oft_rank": 4, "additional_target": "norm"})
    config = build_oft_config(model, ranked.finetuning, detect_kind(model.config, "auto"))
    assert (config.r, config.oft_block_size, config.modules_to_save) == (4, 0, ["norm"])
