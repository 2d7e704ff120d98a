"""LLaMA-Pro: `lmforge expand` adds zero-initialised blocks that leave the logits unchanged, and `use_llama_pro`
trains only those blocks (freeze or LoRA)."""

import json

import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file

from lmforge.config import build_config
from lmforge.errors import ConfigError, ExportError
from lmforge.export.llama_pro import expand_blocks
from lmforge.train.runner import run_training
from tests.conftest import ROOT, run_cli

TRAIN = {"template": "chatml", "dataset": "identity", "dataset_dir": str(ROOT / "examples" / "data"),
         "max_samples": 8, "cutoff_len": 64, "max_steps": 2, "per_device_train_batch_size": 4, "learning_rate": 1e-2,
         "report_to": "none", "overwrite_output_dir": True, "save_strategy": "no", "use_llama_pro": True,
         "freeze_trainable_layers": 2}


@pytest.fixture(scope="module")
def expanded(tmp_path_factory):
    out = tmp_path_factory.mktemp("pro") / "tiny-llama-pro"
    result = run_cli("expand", "builtin:tiny-llama", str(out), "--num-expand", "2")
    assert result.returncode == 0, result.stderr
    assert "from 2 to 4 layers" in result.stdout and "new blocks 1, 3" in result.stdout
    return out


@pytest.mark.slow
def test_expanded_model_has_zeroed_copies_after_each_group(expanded, tiny_llama_path):
    config = json.loads((expanded / "config.json").read_text())
    assert config["num_hidden_layers"] == 4
    base, pro = load_file(tiny_llama_path / "model.safetensors"), load_file(expanded / "model.safetensors")
    for new, copied in ((1, 0), (3, 1)):
        for name in ("self_attn.q_proj.weight", "mlp.up_proj.weight", "input_layernorm.weight"):
            assert torch.equal(pro[f"model.layers.{new}.{name}"], base[f"model.layers.{copied}.{name}"])
        for name in ("self_attn.o_proj.weight", "mlp.down_proj.weight"):
            assert not pro[f"model.layers.{new}.{name}"].any()
    assert torch.equal(pro["model.layers.2.mlp.down_proj.weight"], base["model.layers.1.mlp.down_proj.weight"])
    assert (expanded / "tokenizer.json").is_file()


@pytest.mark.slow
def test_freeze_with_llama_pro_trains_only_the_new_blocks(expanded, tmp_path):
    out = tmp_path / "freeze"
    run_training(build_config({**TRAIN, "model_name_or_path": str(expanded), "finetuning_type": "freeze",
                               "output_dir": str(out)}), Console(quiet=True))
    before, after = load_file(expanded / "model.safetensors"), load_file(out / "model.safetensors")
    changed = {name.split(".")[2] for name in after if not torch.equal(after[name], before[name])}
    assert changed == {"1", "3"}


@pytest.mark.slow
def test_lora_with_llama_pro_adapts_only_the_new_blocks(expanded, tmp_path):
    out = tmp_path / "lora"
    run_training(build_config({**TRAIN, "model_name_or_path": str(expanded), "finetuning_type": "lora",
                               "output_dir": str(out)}), Console(quiet=True))
    layers = {name.split(".")[4] for name in load_file(out / "adapter_model.safetensors")}
    assert layers == {"1", "3"}
    assert json.loads((out / "adapter_config.json").read_text())["layers_to_transform"] == [1, 3]


def test_expansion_and_llama_pro_check_their_numbers(tmp_path):
    with pytest.raises(ExportError, match="has 2 layers: --num-expand must divide it"):
        expand_blocks("builtin:tiny-llama", tmp_path / "out", 3)
    with pytest.raises(ConfigError, match="`use_llama_pro` trains the expanded blocks with `finetuning_type: freeze`"):
        build_config({"use_llama_pro": True, "finetuning_type": "full"})
    with pytest.raises(ConfigError, match="a positive count"):
        build_config({"use_llama_pro": True, "finetuning_type": "freeze", "freeze_trainable_layers": -2})
