"""LLaMA-Factory v0.9.3's Mixture-of-Depths example through `lmforge train` (only its paths changed), then a
`mixture_of_depths: load` run from the saved model, and the commands that refuse a MoD checkpoint."""

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from lmforge.model.mixture_of_depths import use_mixture_of_depths
from lmforge.train.precision import cpu_has_fast_bf16
from tests.conftest import run_cli
from tests.refdata import refdata

PATHS = ["model_name_or_path=builtin:tiny-llama", "max_steps=2"]


@pytest.mark.slow
def test_llamafactory_mod_example_trains_saves_routers_and_loads_them(tmp_path):
    example = refdata("llamafactory_examples_v0.9.3", "extras", "mod", "llama3_full_sft.yaml")
    data = refdata("llamafactory_data")
    out = tmp_path / "mod"
    # the example's `pure_bf16: true` as shipped where the CPU computes bf16; emulated (AVX2), it took 10 minutes
    precision = () if torch.cuda.is_available() or cpu_has_fast_bf16() else ("pure_bf16=false",)
    paths = (*PATHS, *precision)
    check = run_cli("check", str(example), *paths, f"dataset_dir={data}", f"output_dir={out}")
    assert check.returncode == 0, check.stderr
    result = run_cli("train", str(example), *paths, f"dataset_dir={data}", f"output_dir={out}")
    assert result.returncode == 0, result.stderr
    assert "mixture_of_depths (convert): layers [1] route 12.5%" in result.stdout
    assert json.loads((out / "train_summary.json").read_text())["steps"] == 2
    assert json.loads((out / "config.json").read_text())["mixture_of_depths"] == {"layers": [1], "capacity": 0.125}
    saved = {name: tensor for name, tensor in load_file(out / "model.safetensors").items() if "mod_router" in name}
    assert sorted(saved) == ["model.layers.1.mod_router.bias", "model.layers.1.mod_router.weight"]

    model = AutoModelForCausalLM.from_pretrained(out)  # what `load` does: the dense load, then the routers
    assert use_mixture_of_depths(model, "load", str(out)) == [1]
    for name, tensor in saved.items():
        torch.testing.assert_close(model.get_parameter(name), tensor, rtol=0, atol=0)

    again = run_cli("train", str(example), *precision, f"model_name_or_path={out}", "mixture_of_depths=load",
                    "max_steps=1", f"dataset_dir={data}", f"output_dir={tmp_path / 'again'}")
    assert again.returncode == 0, again.stderr
    assert "mixture_of_depths (load): layers [1]" in again.stdout

    dense = run_cli("train", str(example), *precision, f"model_name_or_path={out}", "mixture_of_depths=convert",
                    f"dataset_dir={data}", f"output_dir={tmp_path / 'no'}")
    assert dense.returncode == 1 and "use `mixture_of_depths: load`" in " ".join(dense.stderr.split())
    chat = tmp_path / "chat.yaml"
    chat.write_text(f"model_name_or_path: {out}\ntemplate: llama3\n")
    refused = run_cli("chat", str(chat), "--prompt", "hi")
    assert refused.returncode == 1 and "was trained with Mixture-of-Depths" in " ".join(refused.stderr.split())
