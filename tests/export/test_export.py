"""`run_export`: adapters merged (LoRA and DoRA), dtype, .bin, GGUF, Modelfile, processor, errors."""

import json

import pytest
import torch
from peft import PeftModel
from rich.console import Console
from transformers import AutoModelForCausalLM, AutoTokenizer

from lmforge.config import build_config
from lmforge.data.templates import get_template
from lmforge.errors import ExportError
from lmforge.export.pipeline import run_export
from lmforge.export.save import save_legacy_bin
from lmforge.export.verify import masked_logits, probe_batch


def export_config(tmp_path, adapters, **keys):
    raw = {"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "export_dir": str(tmp_path / "out"),
           "adapter_name_or_path": [str(a) for a in adapters], **keys}
    return build_config(raw)


def source_logits(base, adapters, batch):
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    for adapter in adapters:
        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    return masked_logits(model, batch)


def test_lora_then_dora_merge_verify_and_write_modelfile(tmp_path, tiny_llama_path, lora_and_dora):
    console = Console(record=True, width=200)
    result = run_export(export_config(tmp_path, lora_and_dora), console)
    out = result.export_dir
    assert (out / "model.safetensors").is_file() and not (out / "pytorch_model.bin").exists()
    assert result.max_abs_logit_diff <= 1e-3
    assert "max |logit diff|" in console.export_text()
    # independently: base + LoRA + DoRA (peft, unmerged last) equals the export
    tokenizer = AutoTokenizer.from_pretrained(out)
    batch = probe_batch(get_template("chatml"), tokenizer)
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
    source = PeftModel.from_pretrained(PeftModel.from_pretrained(base, lora_and_dora[0]).merge_and_unload(),
                                       lora_and_dora[1])
    exported = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert (masked_logits(source, batch) - masked_logits(exported, batch)).abs().max() < 1e-4
    # the adapters really changed the model
    plain = masked_logits(AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32), batch)
    assert (plain - masked_logits(exported, batch)).abs().max() > 1e-2
    # generation config stops on the template's end-of-turn token
    generation = json.loads((out / "generation_config.json").read_text())
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end in (generation["eos_token_id"] if isinstance(generation["eos_token_id"], list)
                      else [generation["eos_token_id"]])
    modelfile = (out / "Modelfile").read_text()
    assert modelfile.startswith("FROM .\n")
    assert 'PARAMETER stop "<|im_end|>"' in modelfile
    assert "<|im_start|>user\n{{ .Content }}<|im_end|>\n" in modelfile


def test_bfloat16_legacy_bin_export(tmp_path, tiny_llama_path, lora_and_dora):
    result = run_export(export_config(tmp_path, lora_and_dora[:1], export_dtype="bfloat16",
                                      export_legacy_format=True, export_modelfile=False))
    out = result.export_dir
    assert (out / "pytorch_model.bin").is_file() and not (out / "model.safetensors").exists()
    assert not (out / "Modelfile").exists()
    state = torch.load(out / "pytorch_model.bin", weights_only=True)
    assert {t.dtype for t in state.values()} == {torch.bfloat16}
    assert 0 < result.max_abs_logit_diff <= result.tolerance == 0.25


def test_legacy_bin_shards_have_an_index_transformers_reads(tmp_path, tiny_llama_path):
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
    files = save_legacy_bin(model, tmp_path, "100KB")
    assert len(files) > 1 and files[0] == f"pytorch_model-00001-of-{len(files):05d}.bin"
    index = json.loads((tmp_path / "pytorch_model.bin.index.json").read_text())
    assert set(index["weight_map"].values()) == set(files)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, reloaded.state_dict()[name]), name


@pytest.mark.slow
def test_gguf_export_is_verified_and_named_in_the_modelfile(tmp_path, lora_and_dora):
    console = Console(record=True, width=200)
    result = run_export(export_config(tmp_path, lora_and_dora, export_gguf="f16,q8_0"), console)
    out = result.export_dir
    assert (out / "out-f16.gguf").is_file() and (out / "out-q8_0.gguf").is_file()
    assert [r.what.split()[0] for r in result.reports[1:]] == ["out-f16.gguf", "out-q8_0.gguf"]
    assert all(r.ok for r in result.reports)
    assert (out / "Modelfile").read_text().startswith("FROM ./out-f16.gguf\n")
    assert "out-q8_0.gguf read back by transformers" in console.export_text()


def test_quantized_export_without_a_usable_bitsandbytes_fails_before_loading(tmp_path, monkeypatch):
    import lmforge.model.quantization as quantization

    monkeypatch.setattr(quantization, "version", lambda name: "0.46.1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ExportError, match=r"without a CUDA GPU needs bitsandbytes' CPU backend, which bitsandbytes "
                                          r"0.46.1 lacks: pip install -U 'bitsandbytes>=0.47.0', or remove the key"):
        run_export(export_config(tmp_path, [], export_quantization_bit=4))
    assert not (tmp_path / "out").exists()


def test_auto_template_export_skips_the_modelfile_it_cannot_write(tmp_path, tiny_llama_path):
    """`template: auto` with a jinja Ollama's slots cannot hold (Qwen3's rewrites history): the export completes and
    says in one line why there is no Modelfile (it used to fail writing it, and before that rendering an empty probe
    conversation Qwen's jinja cannot render)."""
    import shutil

    from tests.refdata import refdata

    source = tmp_path / "qwen3-like"
    shutil.copytree(tiny_llama_path, source)
    tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer.chat_template = (refdata("chat_templates") / "qwen3.jinja").read_text(encoding="utf-8")
    tokenizer.save_pretrained(source)
    console = Console(record=True, width=300)
    result = run_export(build_config({"model_name_or_path": str(source), "template": "auto",
                                      "export_dir": str(tmp_path / "out")}), console)
    assert "model.safetensors" in result.files and "Modelfile" not in result.files
    lines = [line for line in console.export_text().splitlines() if "Modelfile" in line]
    assert len(lines) == 1 and lines[0].startswith("no Ollama Modelfile: the model's jinja chat template cannot be "
                                                   "written as an Ollama template: ") and "not prefix" in lines[0]


def test_processor_of_a_vision_model_is_exported(tmp_path, tiny_llama_path):
    import shutil

    from transformers import CLIPImageProcessor

    source = tmp_path / "vlm-like"
    shutil.copytree(tiny_llama_path, source)
    CLIPImageProcessor(size={"shortest_edge": 32}).save_pretrained(source)
    cfg = build_config({"model_name_or_path": str(source), "template": "chatml",
                        "export_dir": str(tmp_path / "out")})
    run_export(cfg)
    saved = json.loads((tmp_path / "out" / "preprocessor_config.json").read_text())
    assert saved["size"] == {"shortest_edge": 32}


def test_export_too_strict_tolerance_fails(tmp_path, lora_and_dora):
    with pytest.raises(ExportError, match="does not reproduce the source model"):
        run_export(export_config(tmp_path, lora_and_dora, export_dtype="bfloat16", export_tolerance=1e-9))


def test_modelfile_keeps_every_slot_verbatim():
    from lmforge.export.ollama import modelfile_text

    template = get_template("llama3")
    text = modelfile_text(template, "./m.gguf", bos_token="<|begin_of_text|>", parameters={"temperature": 0})
    assert "{{-" not in text and "-}}" not in text  # trim markers would eat the slots' newlines
    user = template.format_user.replace("{{content}}", "{{ .Content }}")
    assert user + '{{ else if eq .Role "assistant" }}' in text
    assert text.startswith("FROM ./m.gguf\n") and '\nTEMPLATE """' in text
    assert "{{bos_token}}" not in text and "{{content}}" not in text
    assert [line for line in text.splitlines() if line.startswith("PARAMETER")] == [
        *(f'PARAMETER stop "{word}"' for word in template.stop_words), "PARAMETER temperature 0"]
