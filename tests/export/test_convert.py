"""`lmforge convert --from gguf|zero|dcp|bin|repair`: each result reloads and matches its source."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rich.console import Console
from transformers import AutoModelForCausalLM, AutoTokenizer

from lmforge.errors import ExportError
from lmforge.export.convert import run_convert
from lmforge.export.save import save_legacy_bin
from tests.conftest import run_cli

HERE = Path(__file__).parent


PROBE_IDS = [[3, 14, 15, 92, 65, 35]]


def logits(folder_or_model):
    ids = torch.tensor(PROBE_IDS)
    model = folder_or_model
    if isinstance(folder_or_model, Path):
        model = AutoModelForCausalLM.from_pretrained(folder_or_model, dtype=torch.float32)
    with torch.inference_mode():
        return model(ids).logits


def convert(source, out, fmt, **kwargs):
    console = Console(record=True, width=200)
    result = run_convert(source, out, fmt, console=console, **kwargs)
    return result, " ".join(console.export_text().split())


@pytest.mark.slow
def test_gguf_to_hf_through_the_cli(tmp_path, tiny_llama_path):
    from lmforge.export.gguf import write_gguf

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_path)
    gguf_file = write_gguf(model, tokenizer, tmp_path / "tiny.gguf", "q8_0")
    result = run_cli("convert", str(gguf_file), str(tmp_path / "hf"), "--from", "gguf")
    assert result.returncode == 0, result.stderr
    assert "max |logit diff|" in result.stdout and "converted" in result.stdout
    converted = tmp_path / "hf"
    assert AutoTokenizer.from_pretrained(converted).chat_template == tokenizer.chat_template
    assert (logits(converted) - logits(model)).abs().max() < 0.05  # q8_0 is lossy, but only slightly


def test_bin_shards_to_safetensors(tmp_path, tiny_llama_path):
    source = tmp_path / "bin"
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
    save_legacy_bin(model, source, "100KB")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy2(tiny_llama_path / name, source / name)
    result, _ = convert(source, tmp_path / "out", "bin")
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert not list((tmp_path / "out").glob("*.bin")) and (tmp_path / "out" / "tokenizer.json").is_file()
    assert result.report.max_abs_diff == 0
    assert torch.equal(logits(tmp_path / "out"), logits(model))


def test_repair_bin_beside_an_incomplete_safetensors_index(tmp_path, tiny_llama_path):
    """The seed's 'meta tensor' folder: a full .bin next to a safetensors index missing a shard."""
    broken = tmp_path / "broken"
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
    model.save_pretrained(broken, max_shard_size="100KB")
    save_legacy_bin(model, broken, "1GB")
    shards = sorted(broken.glob("model-*.safetensors"))
    shards[1].unlink()
    _, text = convert(broken, tmp_path / "fixed", "repair")
    assert f"names 1 shard(s) that are not in the folder: {shards[1].name}" in text
    assert "safetensors and .bin weights side by side" in text and "meta tensor" in text
    assert "using the complete bin set" in text
    assert torch.equal(logits(tmp_path / "fixed"), logits(model))


def test_repair_fixes_tied_weights_that_disagree_with_the_config(tmp_path, tiny_llama_path):
    folder = tmp_path / "tied"
    shutil.copytree(tiny_llama_path, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "tie_word_embeddings": True}))
    _, text = convert(folder, tmp_path / "fixed", "repair")
    assert "tie_word_embeddings is true but the checkpoint holds its own, different lm_head" in text
    assert json.loads((tmp_path / "fixed" / "config.json").read_text())["tie_word_embeddings"] is False
    assert torch.equal(logits(tmp_path / "fixed"), logits(tiny_llama_path))


def test_repair_reports_missing_shards_it_cannot_recreate(tmp_path, tiny_llama_path):
    folder = tmp_path / "partial"
    AutoModelForCausalLM.from_pretrained(tiny_llama_path).save_pretrained(folder, max_shard_size="100KB")
    missing = sorted(folder.glob("model-*.safetensors"))[0]
    missing.unlink()
    with pytest.raises(ExportError, match=rf"no complete set of weights \(safetensors: {missing.name}\).*copy the "):
        convert(folder, tmp_path / "out", "repair")


@pytest.mark.parametrize(("config_text", "message"), [
    (None, r"no config.json in .*copy the config.json of the model this checkpoint was trained from.*--config"),
    ('{"hidden_size": 64,', r"config.json is not valid JSON \(Expecting .* at line 1"),
    ('{"hidden_size": 64}', r"has no `model_type`, so transformers cannot tell the architecture"),
])
def test_missing_or_broken_config_says_what_to_provide(tmp_path, tiny_llama_path, config_text, message):
    folder = tmp_path / "noconfig"
    shutil.copytree(tiny_llama_path, folder)
    (folder / "config.json").unlink()
    if config_text is not None:
        (folder / "config.json").write_text(config_text)
    with pytest.raises(ExportError, match=message):
        convert(folder, tmp_path / "out", "repair")


def test_config_from_the_command_line_and_a_wrong_config_is_named(tmp_path, tiny_llama_path):
    folder = tmp_path / "weights-only"
    folder.mkdir()
    shutil.copy2(tiny_llama_path / "model.safetensors", folder)
    convert(folder, tmp_path / "ok", "repair", config=tiny_llama_path / "config.json")
    other = json.loads((tiny_llama_path / "config.json").read_text()) | {"num_hidden_layers": 3}
    (tmp_path / "wrong.json").write_text(json.dumps(other))
    with pytest.raises(ExportError, match=r"the weights do not fit the config \(llama\): 9 missing"):
        convert(folder, tmp_path / "bad", "repair", config=tmp_path / "wrong.json")


def test_dcp_checkpoint_to_hf(tmp_path, tiny_llama_path):
    import torch.distributed.checkpoint as dcp

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
    with torch.no_grad():
        model.model.norm.weight.mul_(1.5)  # a "trained" change that must survive the conversion
    checkpoint = tmp_path / "run" / "step-10"
    dcp.save({"model": model.state_dict(), "step": torch.tensor(10)}, checkpoint_id=checkpoint)  # one process: no group
    shutil.copy2(tiny_llama_path / "config.json", tmp_path / "run")
    _, text = convert(checkpoint, tmp_path / "hf", "dcp")
    assert "left out (not model weights): step" in text
    assert torch.equal(logits(tmp_path / "hf"), logits(model))


@pytest.mark.slow
@pytest.mark.parametrize("stage", [2, 3])
def test_zero_checkpoint_to_hf(tmp_path, tiny_llama_path, stage):
    pytest.importorskip("deepspeed")
    checkpoint = tmp_path / "checkpoint-1"
    env = {**os.environ, "MASTER_PORT": str(29500 + stage)}
    made = subprocess.run([sys.executable, str(HERE / "make_zero_checkpoint.py"), str(tiny_llama_path),
                           str(checkpoint), str(stage)], capture_output=True, text=True, timeout=300, env=env)
    assert made.returncode == 0, made.stderr[-3000:]
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):  # as HF Trainer lays it out
        shutil.copy2(tiny_llama_path / name, checkpoint / name)
    result = run_cli("convert", str(checkpoint), str(tmp_path / "hf"), "--from", "zero")
    assert result.returncode == 0, result.stderr
    expected = torch.load(checkpoint / "expected.pt", weights_only=True)
    converted = AutoModelForCausalLM.from_pretrained(tmp_path / "hf", dtype=torch.float32).state_dict()
    assert set(converted) == set(expected)
    for name, tensor in expected.items():
        assert torch.equal(converted[name], tensor), name
    original = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32).state_dict()
    assert not torch.equal(original["model.norm.weight"], converted["model.norm.weight"])  # the step trained


def test_convert_cli_errors_are_one_message(tmp_path):
    result = run_cli("convert", str(tmp_path), str(tmp_path / "out"), "--from", "onnx")
    assert result.returncode == 1 and "unknown source format `onnx`; known: gguf, zero" in result.stderr
    assert "Traceback" not in result.stderr
