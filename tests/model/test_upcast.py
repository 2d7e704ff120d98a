"""`upcast_layernorm` and `upcast_lmhead_output` on a half-precision model, and a run that trains with both."""

import pytest
import torch
from rich.console import Console
from transformers import AutoModelForCausalLM

import lmforge.train.precision as precision_module
from lmforge.config import build_config
from lmforge.model.upcast import upcast_head_output, upcast_layer_norms
from lmforge.train.runner import run_training
from tests.conftest import ROOT


def test_norm_weights_and_logits_become_float32(tiny_llama_path):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.bfloat16)
    assert upcast_layer_norms(model) == 5  # two per layer, and the final norm
    dtypes = {name: param.dtype for name, param in model.named_parameters()}
    assert {dtypes[n] for n in dtypes if "norm" in n} == {torch.float32}
    assert {dtypes[n] for n in dtypes if "norm" not in n} == {torch.bfloat16}
    assert upcast_head_output(model)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the mixed precision training runs under
        logits = model(torch.tensor([[5, 17, 42]])).logits
    assert logits.dtype == torch.float32
    assert not upcast_head_output(AutoModelForCausalLM.from_pretrained(tiny_llama_path))  # already float32


@pytest.mark.slow
@pytest.mark.skipif(not (torch.cuda.is_available() or precision_module.cpu_has_fast_bf16()),
                    reason="this CPU has no bf16 arithmetic: lmforge trains it in fp32 (emulated, `pure_bf16` took 5 "
                           "minutes here)")
@pytest.mark.parametrize("precision", [{"bf16": True}, {"pure_bf16": True}])  # with and without autocast
def test_lora_trains_in_bf16_with_float32_norms_and_logits(tmp_path, precision):
    summary = run_training(build_config({**precision,
        "model_name_or_path": "builtin:tiny-llama", "template": "chatml", "dataset": "identity",
        "dataset_dir": str(ROOT / "examples" / "data"), "max_samples": 8, "cutoff_len": 64, "max_steps": 2,
        "per_device_train_batch_size": 4, "report_to": "none", "output_dir": str(tmp_path),
        "upcast_layernorm": True, "upcast_lmhead_output": True}), Console(quiet=True))
    assert summary["steps"] == 2 and summary["final_loss"] > 0


@pytest.mark.parametrize("pure_bf16", [False, True])
def test_trainable_weights_are_float32_unless_pure_bf16(tiny_llama_path, pure_bf16):
    """Mixed precision keeps float32 trainable weights; `pure_bf16` keeps full fine-tuning's weights bf16 (half the
    memory of float32 master weights, as LLaMA-Factory's pure_bf16). LoRA's adapters are float32 either way: peft
    creates them so (`autocast_adapter_dtype`), in LLaMA-Factory too."""
    from lmforge.model.adapters import apply_finetuning
    from lmforge.model.kind import detect_kind

    for method in ("full", "lora"):
        model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.bfloat16)
        ft = build_config({"finetuning_type": method, "pure_bf16": pure_bf16}).finetuning
        model = apply_finetuning(model, ft, detect_kind(model.config))
        trainable = {param.dtype for param in model.parameters() if param.requires_grad}
        assert trainable == {torch.bfloat16 if pure_bf16 and method == "full" else torch.float32}, method
