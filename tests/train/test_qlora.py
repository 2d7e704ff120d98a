"""QLoRA on any machine: bitsandbytes quantizes the base to 4 or 8 bits on a CUDA GPU or, from 0.47, on the CPU.
lmforge trains LoRA on the quantized base, chats with the adapter kept beside the quantized weights (merging would
round it into them), and exports it merged onto the full-precision base, then quantized and verified."""

import json
import math

import pytest
import torch
import yaml
from peft import PeftModel
from transformers import AutoModelForCausalLM, BitsAndBytesConfig

import lmforge.model.quantization as quantization
from lmforge.config import build_config
from lmforge.errors import ConfigError, ModelError
from lmforge.model.adapters import count_parameters
from lmforge.model.fit import check_model_fit
from lmforge.model.loading import load_base_model
from lmforge.model.lora import merge_adapters
from tests.conftest import ROOT, run_cli

DATA = {"dataset": "identity", "dataset_dir": str(ROOT / "examples" / "data"), "template": "llama3",
        "max_samples": 8, "cutoff_len": 128}


def write_config(path, **keys):
    path.write_text(yaml.safe_dump(keys))
    return str(path)


def test_a_missing_or_too_old_bitsandbytes_is_refused_before_loading_with_the_install_line(monkeypatch):
    cfg = build_config({"model_name_or_path": "builtin:tiny-llama", "quantization_bit": 4, **DATA})
    monkeypatch.setattr(quantization, "find_spec", lambda name: None)
    with pytest.raises(ConfigError) as err:
        check_model_fit(cfg.model, cfg.finetuning, None, "train")
    assert str(err.value) == ("`quantization_bit: 4` (QLoRA) needs the bitsandbytes package: "
                              "pip install 'lmforge[qlora]' (or pip install bitsandbytes)")
    monkeypatch.undo()
    monkeypatch.setattr(quantization, "version", lambda name: "0.46.1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError) as err:
        check_model_fit(cfg.model, cfg.finetuning, None, "train")
    assert str(err.value) == ("`quantization_bit: 4` (QLoRA) on a machine without a CUDA GPU needs bitsandbytes' "
                              "CPU backend, which bitsandbytes 0.46.1 lacks: pip install -U 'bitsandbytes>=0.47.0'")


@pytest.mark.parametrize(("keys", "message"), [
    ({"adapter_name_or_path": "a,b"}, r"`quantization_bit: 4` takes one adapter, kept unmerged; got 2: merge them "
                                      r"with `lmforge export`"),
    ({"adapter_name_or_path": "a", "create_new_adapter": True}, r"`create_new_adapter` with `quantization_bit: 4` "
                                                                r"would merge the given adapter into the quantized"),
    ({"stage": "dpo", "ref_model": "r", "ref_model_adapters": "a,b", "ref_model_quantization_bit": 4},
     r"`ref_model_quantization_bit: 4` takes one of `ref_model_adapters`, kept unmerged; got 2"),
    ({"pissa_init": True}, r"`pissa_init` splits full-precision weights .* remove `quantization_bit` for PiSSA"),
    ({"finetuning_type": "freeze"}, r"trains LoRA or OFT adapters on frozen quantized weights: set `finetuning_type: "
                                    r"lora` or `oft` \(got `freeze`\)"),
])
def test_what_a_quantized_base_cannot_take_is_refused_from_the_config(keys, message):
    """LLaMA-Factory's own refusals, at config time: merging into quantized weights would round the adapters into
    them, and PiSSA would decompose a 4-bit weight's packed storage as if it were the weight."""
    with pytest.raises(ConfigError, match=message):
        build_config({"model_name_or_path": "builtin:tiny-llama", "quantization_bit": 4, **keys})


@pytest.mark.parametrize("bits", [4, 8])
def test_the_base_loads_quantized_and_counts_its_weights_unpacked(bits, tiny_llama_path):
    cfg = build_config({"model_name_or_path": str(tiny_llama_path), "quantization_bit": bits})
    model = load_base_model(cfg.model, dtype=torch.float32, cutoff_len=128)
    assert type(model.model.layers[0].mlp.down_proj).__module__.startswith("bitsandbytes.")
    plain = AutoModelForCausalLM.from_pretrained(tiny_llama_path)
    assert count_parameters(model)[1] == sum(p.numel() for p in plain.parameters())


def test_layers_the_packed_cpu_kernel_cannot_take_keep_the_generic_path(tiny_llama_path):
    """bitsandbytes' 4-bit CPU inference kernel (AVX512-BF16) packs weights in blocks of 32 output rows and of its
    quantization block along the input: the tiny model's MLP (176 wide) fails its asserts; other layers keep it."""
    quantized = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.float32)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, quantization_config=quantized,
                                                 device_map={"": "cpu"})
    if not getattr(model.model.layers[0].self_attn.q_proj, "support_avx512bf16_for_cpu", False):
        pytest.skip("this CPU has no AVX512-BF16, or this bitsandbytes (before 0.49) no packed CPU kernel")
    quantization.keep_cpu_kernel_to_packable_layers(model)
    layer = model.model.layers[0]
    assert not layer.mlp.up_proj.support_avx512bf16_for_cpu and not layer.mlp.down_proj.support_avx512bf16_for_cpu
    assert layer.self_attn.q_proj.support_avx512bf16_for_cpu  # 64 x 64: packable
    with torch.no_grad():
        assert torch.isfinite(model(torch.tensor([[1, 2, 3]])).logits).all()


def test_a_quantized_base_keeps_one_adapter_beside_its_weights_and_refuses_several(tmp_path, tiny_llama_path):
    from peft import LoraConfig, get_peft_model

    plain = AutoModelForCausalLM.from_pretrained(tiny_llama_path)
    get_peft_model(plain, LoraConfig(target_modules=["q_proj"], r=2)).save_pretrained(tmp_path / "adapter")
    cfg = build_config({"model_name_or_path": str(tiny_llama_path), "quantization_bit": 4})
    model = merge_adapters(load_base_model(cfg.model, dtype=torch.float32, cutoff_len=128), [str(tmp_path / "adapter")])
    assert isinstance(model, PeftModel) and not model.base_model.model.model.layers[0].self_attn.q_proj.merged
    with pytest.raises(ModelError, match=r"2 adapters on quantized weights .* merge them with `lmforge export` "
                                         r"first, or remove `quantization_bit`"):
        merge_adapters(load_base_model(cfg.model, dtype=torch.float32, cutoff_len=128), [str(tmp_path / "adapter")] * 2)


@pytest.mark.slow
def test_qlora_trains_chats_and_exports_as_a_user_runs_it(tmp_path):
    """The whole loop through the CLI: 4-bit QLoRA training, chat with the adapter on the 4-bit base, `lmforge
    export` (merged on the full-precision base, then its 4-bit copy verified against it), chat with that copy."""
    train = run_cli("train", write_config(
        tmp_path / "train.yaml", model_name_or_path="builtin:tiny-llama", quantization_bit=4, finetuning_type="lora",
        lora_target="all", output_dir=str(tmp_path / "adapter"), max_steps=3, learning_rate=1e-3,
        per_device_train_batch_size=2, save_strategy="no", report_to="none", **DATA))
    assert train.returncode == 0, (train.stdout + train.stderr)[-3000:]
    summary = json.loads((tmp_path / "adapter" / "train_summary.json").read_text())
    assert summary["steps"] == 3 and math.isfinite(summary["final_loss"])
    adapter = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert "down_proj" in adapter["target_modules"]  # the quantized linear layers are LoRA's targets
    chat = run_cli("chat", write_config(tmp_path / "chat.yaml", model_name_or_path="builtin:tiny-llama",
                                        adapter_name_or_path=str(tmp_path / "adapter"), quantization_bit=4,
                                        template="llama3", max_new_tokens=4), "--prompt", "hi")
    assert chat.returncode == 0 and chat.stdout.strip(), (chat.stdout + chat.stderr)[-3000:]
    export = run_cli("export", write_config(tmp_path / "export.yaml", model_name_or_path="builtin:tiny-llama",
                                            adapter_name_or_path=str(tmp_path / "adapter"), template="llama3",
                                            export_dir=str(tmp_path / "export"), export_quantization_bit=4))
    assert export.returncode == 0, (export.stdout + export.stderr)[-3000:]
    assert "verified: 4-bit bitsandbytes export vs source model" in export.stdout
    saved = json.loads((tmp_path / "export" / "config.json").read_text())["quantization_config"]
    assert saved["load_in_4bit"] is True
    chat = run_cli("chat", write_config(tmp_path / "chat_export.yaml", model_name_or_path=str(tmp_path / "export"),
                                        template="llama3", max_new_tokens=4), "--prompt", "hi")
    assert chat.returncode == 0 and chat.stdout.strip(), (chat.stdout + chat.stderr)[-3000:]


def test_an_8bit_base_chats_without_the_matmuls_per_call_notes(tmp_path):
    """bitsandbytes' 8-bit matmul logs, at every call, that it casts float32 inputs to float16: hidden unless
    `--verbose`, as a user cannot act on it."""
    config = write_config(tmp_path / "chat.yaml", model_name_or_path="builtin:tiny-llama", quantization_bit=8,
                          template="llama3", max_new_tokens=4)
    chat = run_cli("chat", config, "--prompt", "hi")
    assert chat.returncode == 0 and chat.stdout.strip(), (chat.stdout + chat.stderr)[-3000:]
    assert "MatMul8bitLt" not in chat.stdout + chat.stderr
    verbose = run_cli("--verbose", "chat", config, "--prompt", "hi")
    assert "MatMul8bitLt: inputs will be cast" in verbose.stdout + verbose.stderr


@pytest.mark.parametrize("job", [
    {"stage": "rm", "dataset": "dpo_en_demo", "template": "llama3"},  # a fresh full-precision score head
    {"stage": "dpo", "dataset": "dpo_en_demo", "template": "llama3"},  # the reference: the adapter-disabled base
    {"stage": "sft", "dataset": "mllm_demo", "template": "qwen2_vl", "vlm": "qwen2_vl"},  # a VLM stays a VLM
    {"stage": "grpo", "dataset": "rl_math", "dataset_dir": str(ROOT / "examples" / "data"), "template": "chatml",
     "reward_funcs": "accuracy", "num_generations": 4, "max_completion_length": 4},  # rollouts on the 4-bit base
], ids=["rm", "dpo", "qwen2_vl", "grpo"])
def test_qlora_trains_the_other_stages_and_a_vision_language_model(job, tmp_path):
    from rich.console import Console

    from lmforge.testing.tiny_vlm import build_tiny_vlm
    from lmforge.train.runner import run_training
    from tests.refdata import refdata

    job = dict(job)
    vlm = job.pop("vlm", None)
    model = str(build_tiny_vlm(tmp_path / "vlm", vlm)) if vlm else "builtin:tiny-llama"
    cfg = build_config({"model_name_or_path": model, "quantization_bit": 4, "finetuning_type": "lora",
                        "lora_target": "all", "dataset_dir": str(refdata("llamafactory_data")), "max_samples": 8,
                        "cutoff_len": 256, "max_steps": 2, "per_device_train_batch_size": 4, "save_strategy": "no",
                        "report_to": "none", "output_dir": str(tmp_path / "out"), **job})
    run_training(cfg, Console(quiet=True))
    summary = json.loads((tmp_path / "out" / "train_summary.json").read_text())
    assert summary["steps"] == 2 and math.isfinite(summary["final_loss"])


def test_oft_trains_on_a_quantized_base_and_its_adapter_chats_there_and_merges_for_export(tmp_path, tiny_llama_path):
    """LLaMA-Factory's QOFT (extras/qoft): OFT's rotation of each layer's input in front of the 4-bit layer. The
    adapter then answers beside the 4-bit weights (chat) and merges onto the full-precision base (export)."""
    from rich.console import Console

    from lmforge.train.runner import run_training

    out = tmp_path / "oft"
    run_training(build_config({"model_name_or_path": str(tiny_llama_path), "quantization_bit": 4,
                               "finetuning_type": "oft", "oft_block_size": 16, "oft_target": "all",
                               "max_steps": 2, "learning_rate": 1e-2, "per_device_train_batch_size": 4,
                               "save_strategy": "no", "report_to": "none", "output_dir": str(out), **DATA}),
                 Console(quiet=True))
    assert json.loads((out / "adapter_config.json").read_text())["peft_type"] == "OFT"
    ids = torch.tensor([[5, 17, 42, 7]])
    quantized = build_config({"model_name_or_path": str(tiny_llama_path), "quantization_bit": 4}).model
    beside = merge_adapters(load_base_model(quantized, dtype=torch.float32, cutoff_len=128), [str(out)])
    assert isinstance(beside, PeftModel)  # kept unmerged: merging would round the rotation into 4-bit weights
    full = build_config({"model_name_or_path": str(tiny_llama_path)}).model
    base = load_base_model(full, dtype=torch.float32, cutoff_len=128)
    with torch.no_grad():
        before = base(ids).logits
        merged = merge_adapters(base, [str(out)])
        assert not isinstance(merged, PeftModel)
        after, on_quantized = merged(ids).logits, beside(ids).logits
    assert torch.isfinite(on_quantized).all() and not torch.allclose(after, before)  # the trained rotation counts
