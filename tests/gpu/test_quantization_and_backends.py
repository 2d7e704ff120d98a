"""On a GPU: QLoRA's preflight and device placement, the inference engine's device and vLLM detection."""

from importlib.util import find_spec

import pytest
import torch

from lmforge.data.templates.template import Message
from lmforge.errors import ConfigError
from lmforge.infer.factory import create_engine
from lmforge.infer.vllm_backend import vllm_usable
from lmforge.model import quantization
from tests.gpu.conftest import gpu_config
from tests.model.conftest import load_configured

pytestmark = pytest.mark.gpu


def test_qlora_preflight_on_a_gpu_asks_for_bitsandbytes_only(tiny_llama_path, monkeypatch):
    cfg = gpu_config(tiny_llama_path, quantization_bit=4)
    monkeypatch.setattr(quantization, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"needs the bitsandbytes package: pip install 'lmforge\[qlora\]'"):
        quantization.check_quantization_supported(cfg.model)
    monkeypatch.undo()
    if find_spec("bitsandbytes") is not None:
        quantization.check_quantization_supported(cfg.model)  # a GPU and the package: nothing to say


def test_qlora_loads_4bit_weights_onto_the_current_gpu(tiny_llama_path):
    pytest.importorskip("bitsandbytes")
    cfg = gpu_config(tiny_llama_path, quantization_bit=4, finetuning_type="lora")
    config = quantization.quantization_config(cfg.model, torch.bfloat16)
    assert config.load_in_4bit and config.bnb_4bit_compute_dtype == torch.bfloat16
    model = load_configured(cfg, dtype=torch.bfloat16)
    assert model.is_quantized  # device_map {"": current device}: every weight straight onto this GPU
    assert {p.device for p in model.parameters()} == {torch.device("cuda", torch.cuda.current_device())}
    with torch.no_grad():
        logits = model(input_ids=torch.arange(3, 19, device="cuda").unsqueeze(0)).logits
    assert torch.isfinite(logits).all()


def test_the_transformers_engine_generates_on_the_gpu(tiny_llama_path):
    cfg = gpu_config(tiny_llama_path, do_sample=False, max_new_tokens=8, infer_backend="huggingface")
    engine = create_engine(cfg)
    try:
        assert next(engine.model.parameters()).device.type == "cuda"
        assert engine.model.dtype == torch.bfloat16  # infer_dtype auto on a bf16 GPU
        answer = engine.candidates([Message("user", "hello")])[0]
        assert 0 < len(answer.token_ids) <= 8
    finally:
        engine.close()


def test_vllm_is_chosen_only_when_installed(tiny_llama_path):
    installed = find_spec("vllm") is not None
    assert vllm_usable() is installed  # a CUDA GPU is here: the package decides
    if not installed:
        engine = create_engine(gpu_config(tiny_llama_path, infer_backend="auto", max_new_tokens=4))
        try:
            assert engine.backend == "huggingface"
        finally:
            engine.close()


def test_gptq_export_quantizes_and_verifies_on_the_gpu(tmp_path):
    import json

    from rich.console import Console

    from lmforge.config import build_config
    from lmforge.export.pipeline import run_export

    pytest.importorskip("gptqmodel")
    pytest.importorskip("optimum")
    data = tmp_path / "c4_demo.jsonl"
    data.write_text("\n".join(json.dumps({"text": " ".join(f"w{i}x{j}" for j in range(300))}) for i in range(8)))
    cfg = build_config({"model_name_or_path": "builtin:tiny-llama", "template": "chatml",
                        "export_dir": str(tmp_path / "out"), "export_quantization_bit": 4,
                        "export_quantization_dataset": str(data), "export_quantization_nsamples": 8,
                        "export_quantization_maxlen": 64})
    result = run_export(cfg, Console(record=True))
    assert result.reports[-1].what == "4-bit GPTQ export vs source model" and result.reports[-1].ok
    assert json.loads((tmp_path / "out" / "config.json").read_text())["quantization_config"]["bits"] == 4


def test_quantization_device_map_auto_lets_accelerate_place_quantized_weights(tiny_llama_path, tmp_path):
    pytest.importorskip("bitsandbytes")
    cfg = gpu_config(tiny_llama_path, quantization_bit=4, quantization_device_map="auto",
                     offload_folder=str(tmp_path / "offload"))
    assert quantization.quantized_device_map(cfg.model) == "auto"
    model = load_configured(cfg, dtype=torch.bfloat16)
    assert model.is_quantized and model.hf_device_map  # placed by accelerate's device map
    default = gpu_config(tiny_llama_path, quantization_bit=4)
    assert quantization.quantized_device_map(default.model) == {"": torch.cuda.current_device()}
