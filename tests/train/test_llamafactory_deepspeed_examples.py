"""LLaMA-Factory's v0.9.3 DeepSpeed ZeRO-3 examples train one step on CPU: `lmforge train` runs the one process under
torchrun (DeepSpeed otherwise asks MPI for its rank), so these go through the CLI. Beyond the paths (the model,
data, outputs and `deepspeed: examples/deepspeed/ds_z3_config.json`, shipped here too) only the smoke-run size
changes. Its QLoRA examples (bitsandbytes, on the CPU here) train one step too. The examples lmforge does not run on
this machine are listed with the reason."""

import json
import math

import pytest
import yaml
from rich.console import Console

from lmforge.config import build_config
from lmforge.train.runner import run_training
from tests.conftest import ROOT, run_cli
from tests.llamafactory_examples import example
from tests.refdata import refdata

ZERO3 = str(ROOT / "examples" / "deepspeed" / "ds_z3_config.json")


def cli_trains_one_step(raw, tmp_path):
    config = tmp_path / "example.yaml"
    config.write_text(yaml.safe_dump({**raw, "deepspeed": ZERO3}))
    result = run_cli("train", str(config))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    # DeepSpeed's calls of deprecated torch functions, and accelerate's notes on the threads and the gradient
    # accumulation it set itself, are not the user's to act on (`--verbose` shows them)
    for notice in ("is deprecated", "OMP_NUM_THREADS", "Gradient accumulation steps mismatch"):
        assert notice not in result.stdout + result.stderr
    summary = json.loads((tmp_path / "output_dir" / "train_summary.json").read_text())
    assert summary["steps"] == 1 and math.isfinite(summary["final_loss"])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["train_lora/llama3_lora_sft_ds3.yaml", "train_full/llama3_full_sft.yaml"])
def test_zero3_text_example_trains_one_step(name, tmp_path, monkeypatch):
    monkeypatch.delenv("MASTER_PORT", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # as a user runs it: accelerate then sets the threads
    cli_trains_one_step(example(name, tmp_path, "builtin:tiny-llama"), tmp_path)


# examples whose model is a checkpoint pre-quantized in a format (LLaMA-Factory downloads one of 8B): there is no tiny
# one here to stand in for it, so changing only the model path would train plain LoRA
PREQUANTIZED = {"train_qlora/llama3_lora_sft_gptq.yaml": "GPTQ", "train_qlora/llama3_lora_sft_awq.yaml": "AWQ",
                "train_qlora/llama3_lora_sft_aqlm.yaml": "AQLM"}
NOT_RUN_HERE = {
    **{name: f"needs a checkpoint pre-quantized with {kind}; no tiny one exists here"
       for name, kind in PREQUANTIZED.items()},
    "train_lora/llama3_lora_sft_ray.yaml": "`resources_per_worker: {GPU: 1}`: Ray cannot place GPU workers on a CPU "
    "machine (test_distributed.py::test_ray_keys_and_the_local_cluster_check checks that refusal; Ray on CPU "
    "workers: test_distributed.py::test_ray_train_with_two_cpu_workers_matches_one_process_with_the_same_global_batch)",
    "merge_lora/llama3_gptq.yaml": "GPTQ quantization on export needs lmforge's `gptq` extra (optimum, gptqmodel), "
    "which the dev install leaves out; its install-line refusal: tests/export/test_gptq.py",
}


@pytest.mark.parametrize("name", list(NOT_RUN_HERE))
def test_examples_not_run_here_exist_and_say_why(name):
    assert refdata("llamafactory_examples_v0.9.3", *name.split("/")).is_file()
    pytest.skip(NOT_RUN_HERE[name])


@pytest.mark.parametrize("name", ["train_qlora/llama3_lora_sft_otfq.yaml", "train_qlora/llama3_lora_sft_bnb_npu.yaml",
                                  "extras/fsdp_qlora/llama3_lora_sft.yaml"])
def test_bitsandbytes_qlora_examples_train_one_step(name, tmp_path):
    """`quantization_bit: 4` through bitsandbytes, on a GPU or (bitsandbytes' CPU backend) here; the FSDP one is
    launched with an accelerate config in LLaMA-Factory, its YAML is plain QLoRA."""
    cfg = build_config(example(name, tmp_path, "builtin:tiny-llama"), source=name)
    run_training(cfg, Console(quiet=True))
    summary = json.loads((tmp_path / "output_dir" / "train_summary.json").read_text())
    assert summary["steps"] == 1 and math.isfinite(summary["final_loss"])
