"""On a GPU: bf16 and activation checkpointing by default, and the CPU-only speed paths out of the way."""

import pytest
import torch
from peft.tuners.lora import Linear as LoraLinear
from transformers import AutoModelForCausalLM

from lmforge.errors import ModelError
from lmforge.model import cpu_matmul, fused_lora, packed_attention, speedups
from lmforge.model.kind import detect_kind
from lmforge.model.loading import inference_dtype
from lmforge.model.lora import apply_lora
from lmforge.train.precision import compute_dtype, training_defaults, training_load_dtype
from lmforge.train.runner import training_kwargs
from lmforge.train.summary import peak_memory_mib
from tests.gpu.conftest import gpu_config
from tests.model.conftest import load_configured

pytestmark = pytest.mark.gpu


def test_bf16_and_activation_checkpointing_are_the_gpu_defaults(tiny_llama_path, tmp_path):
    lora = gpu_config(tiny_llama_path, finetuning_type="lora", output_dir=str(tmp_path))
    full = gpu_config(tiny_llama_path, finetuning_type="full", output_dir=str(tmp_path))
    assert torch.cuda.is_bf16_supported()  # every GPU the suite targets (Ampere and later)
    assert compute_dtype(lora) == torch.bfloat16 and inference_dtype(lora.model) == torch.bfloat16
    assert training_load_dtype(lora) == torch.bfloat16  # the frozen base in the compute dtype
    assert training_load_dtype(full) == torch.float32  # fp32 master weights, autocast to bf16
    defaults = training_defaults(lora)
    assert defaults["bf16"] is True and defaults["activation_checkpointing"] is True
    kwargs = training_kwargs(lora)
    assert kwargs["bf16"] is True and "use_cpu" not in kwargs and "dataloader_pin_memory" not in kwargs
    # what the user sets wins
    plain = gpu_config(tiny_llama_path, bf16=False, gradient_checkpointing=False)
    assert compute_dtype(plain) == torch.float32 and training_defaults(plain) == {
        "activation_checkpointing_kwargs": {"use_reentrant": False}}
    assert peak_memory_mib()[1] == "GPU allocated"


def test_cpu_matmul_stays_off_on_cuda(tiny_llama_path, monkeypatch):
    monkeypatch.setattr(cpu_matmul._Choice, "decided", None)
    monkeypatch.setattr(cpu_matmul._Choice, "use_onednn", False)
    model = load_configured(gpu_config(tiny_llama_path, cpu_matmul="auto"), dtype=torch.float32)
    assert not any("forward" in vars(m) for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert cpu_matmul.choose("auto") is False  # no calibration on a GPU machine
    # forced on: tensors on the GPU still go through torch's own kernel
    monkeypatch.setattr(cpu_matmul._Choice, "decided", None)
    routed = load_configured(gpu_config(tiny_llama_path, cpu_matmul="onednn"), dtype=torch.float32).cuda()
    monkeypatch.setattr(cpu_matmul, "_onednn_linear", lambda *a: pytest.fail("oneDNN called on CUDA tensors"))
    input_ids = torch.arange(3, 35, device="cuda").unsqueeze(0)
    with torch.no_grad():
        expected = model.cuda()(input_ids=input_ids).logits
        torch.testing.assert_close(routed(input_ids=input_ids).logits, expected)


def test_packed_attention_on_cuda_is_sdpa_per_sequence(tiny_llama_path, monkeypatch):
    packed_attention.register()
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32,
                                                 attn_implementation=packed_attention.PACKED_SDPA)
    model.cuda().train()
    monkeypatch.setattr(packed_attention._CpuFlashPerSequence, "apply",
                        lambda *a: pytest.fail("the CPU flash kernel was called on CUDA"))
    positions = torch.tensor([[0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3, 4, 5, 6, 7]], device="cuda")
    input_ids = torch.randint(3, model.config.vocab_size, positions.shape, device="cuda",
                              generator=torch.Generator("cuda").manual_seed(0))
    batch = {"input_ids": input_ids, "labels": input_ids, "position_ids": positions, "use_cache": False}

    def loss_and_grads(**extra):
        model.zero_grad()
        loss = model(**batch, **extra).loss
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters()]

    masked_loss, masked_grads = loss_and_grads()
    varlen_loss, varlen_grads = loss_and_grads(**packed_attention.packed_sequence_kwargs(positions))
    assert varlen_loss == pytest.approx(masked_loss, rel=1e-5)
    for varlen, masked in zip(varlen_grads, masked_grads, strict=True):
        torch.testing.assert_close(varlen, masked, rtol=1e-4, atol=1e-6)
    # the bf16 path of training: flash-capable SDPA per sequence, same loss to bf16 precision
    model.to(torch.bfloat16)
    with torch.no_grad():
        bf16 = model(**batch, **packed_attention.packed_sequence_kwargs(positions)).loss.item()
    assert bf16 == pytest.approx(masked_loss, rel=2e-2)


def test_fused_lora_steps_aside_under_bf16_autocast(tiny_llama_path, monkeypatch):
    cfg = gpu_config(tiny_llama_path, finetuning_type="lora", lora_target="all")
    base = load_configured(cfg, dtype=torch.float32)
    model = apply_lora(base, cfg.finetuning, detect_kind(base.config), adapters=[]).cuda()
    assert any("forward" in vars(m) for m in model.modules() if isinstance(m, LoraLinear))  # folded (fused_lora)
    monkeypatch.setattr(fused_lora._FoldedLoraMatmul, "apply", lambda *a: pytest.fail("folded under autocast"))
    input_ids = torch.arange(3, 131, device="cuda").unsqueeze(0)  # enough tokens for the folded path
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = model(input_ids=input_ids, labels=input_ids).loss
    loss.backward()
    assert torch.isfinite(loss)


def test_flash_attention_2_and_liger_say_when_they_cannot_apply(tiny_llama_path, monkeypatch):
    monkeypatch.setattr(speedups, "find_spec", lambda name: None)  # neither flash-attn nor liger-kernel
    assert speedups.attn_implementation(gpu_config(tiny_llama_path, flash_attn="fa2").model) == "sdpa"
    cfg = gpu_config(tiny_llama_path, enable_liger_kernel=True)
    with pytest.raises(ModelError, match="pip install liger-kernel"):
        speedups.apply_liger_kernel(torch.nn.Linear(2, 2), cfg.model)


def test_fp8_trains_a_step_through_accelerate(tiny_llama_path, tmp_path):
    """On FP8 hardware with torchao: the step runs under accelerate's fp8 mixed precision."""
    if torch.cuda.get_device_capability() < (8, 9):
        pytest.skip("FP8 needs compute capability 8.9 or newer")
    pytest.importorskip("torchao")
    from accelerate.state import AcceleratorState
    from rich.console import Console

    from lmforge.train.runner import run_training
    from tests.conftest import ROOT

    summary = run_training(gpu_config(tiny_llama_path, dataset="identity", dataset_dir=str(ROOT / "examples" / "data"),
                                      finetuning_type="full", fp8=True, bf16=True, max_steps=2,
                                      per_device_train_batch_size=2, output_dir=str(tmp_path)), Console(quiet=True))
    assert summary["steps"] == 2 and AcceleratorState().mixed_precision == "fp8"


def test_cuda_only_training_switches_stay_as_written_on_an_ampere_gpu(tiny_llama_path, tmp_path):
    """A CPU switches them off (tests/model/test_loading.py); a GPU of Ampere or later acts on them."""
    cfg = gpu_config(tiny_llama_path, output_dir=str(tmp_path), tf32=True, ddp_backend="nccl", use_liger_kernel=True)
    kwargs = training_kwargs(cfg)
    assert (kwargs["tf32"], kwargs["ddp_backend"], kwargs["use_liger_kernel"]) == (True, "nccl", True)
