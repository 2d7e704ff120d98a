"""LLaMA-Factory's own v0.9.3 example configs of the optimizer methods train on a tiny model: only the model, data
and output paths change, plus a one-step smoke-run size (max_steps, max_samples, cutoff_len)."""

import importlib.util

import pytest
import torch
import yaml
from rich.console import Console

from lmforge.config import build_config
from lmforge.train.runner import run_training
from tests.llamafactory_examples import SMOKE_RUN
from tests.refdata import refdata

EXAMPLES = {"galore/llama3_full_sft.yaml": "galore_torch", "apollo/llama3_full_sft.yaml": "apollo_torch",
            "badam/llama3_full_sft.yaml": "badam", "adam_mini/qwen2_full_sft.yaml": "adam_mini",
            "muon/qwen2_full_sft.yaml": None}


@pytest.mark.slow
@pytest.mark.parametrize("example", list(EXAMPLES))
def test_method_example_trains_one_step(example, tmp_path):
    package = EXAMPLES[example]
    if package and importlib.util.find_spec(package) is None:
        pytest.skip(f"`{package}` is not installed (its lmforge extra)")
    if example.startswith("muon/") and not hasattr(torch.optim, "Muon"):
        pytest.skip("torch.optim.Muon arrived in torch 2.9 (preflight refuses `use_muon` before)")
    raw = yaml.safe_load(refdata("llamafactory_examples_v0.9.3", "extras", *example.split("/")).read_text())
    raw.update(model_name_or_path="builtin:tiny-llama", dataset_dir=str(refdata("llamafactory_data")),
               output_dir=str(tmp_path / "out"), **SMOKE_RUN)
    summary = run_training(build_config(raw, source=example), Console(quiet=True))
    assert summary["steps"] == 1 and summary["final_loss"] > 0
