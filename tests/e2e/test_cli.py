"""The lmforge CLI end to end, as a user runs it, on builtin:tiny-llama and our identity data."""

import json
import math
from importlib import metadata

import pytest
import torch
from transformers import AutoModelForCausalLM

from tests.conftest import ROOT, run_cli

TRAIN = ["model_name_or_path=builtin:tiny-llama", "template=chatml", "dataset=identity",
         f"dataset_dir={ROOT / 'examples' / 'data'}", "max_steps=4", "per_device_train_batch_size=4",
         "logging_steps=1", "learning_rate=1e-3", "report_to=none"]


def write_config(tmp_path, text="stage: sft\n"):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lora")
    config = write_config(out, "stage: sft\nfinetuning_type: lora\nlora_target: all\n")
    result = run_cli("train", str(config), *TRAIN, f"output_dir={out / 'adapter'}")
    assert result.returncode == 0, result.stderr
    return out, result


@pytest.mark.slow
def test_lora_training_writes_adapter_tokenizer_logs_plot_and_summary(lora_run):
    out, result = lora_run
    adapter = out / "adapter"
    for name in ["adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "chat_template.jinja",
                 "generation_config.json", "trainer_log.jsonl", "training_loss.png", "train_summary.json"]:
        assert (adapter / name).is_file(), name
    weights, config = (adapter / name for name in ["adapter_model.safetensors", "adapter_config.json"])
    assert weights.stat().st_mode & 0o777 == config.stat().st_mode & 0o777  # safetensors alone writes 0600
    lines = [json.loads(line) for line in (adapter / "trainer_log.jsonl").read_text().splitlines()]
    assert [line["current_steps"] for line in lines if "loss" in line] == [1, 2, 3, 4]
    summary = json.loads((adapter / "train_summary.json").read_text())
    assert summary["steps"] == 4 and summary["supervised_tokens_per_s"] > 0
    assert summary["supervised_tokens_per_s"] < summary["non_pad_tokens_per_s"] <= summary["input_tokens_per_s"]
    assert "training summary" in result.stdout and "supervised tokens/s" in result.stdout
    assert 0 < summary["mfu"] < 1 and summary["flops_per_token"] > 0 and "model FLOP/s" in result.stdout
    assert "rows per dataset: identity: 90" in result.stdout


@pytest.mark.slow
def test_chat_one_prompt_on_base_plus_adapter(lora_run):
    out, _ = lora_run
    config = write_config(out, "template: chatml\ndo_sample: false\nmax_new_tokens: 8\n")
    result = run_cli("chat", str(config), "model_name_or_path=builtin:tiny-llama",
                     f"adapter_name_or_path={out / 'adapter'}", "--prompt", "Who are you?")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


@pytest.mark.slow
def test_export_merges_shards_and_verifies_logits(lora_run, tiny_llama_path):
    from peft import PeftModel

    from lmforge.data.templates import get_template
    from lmforge.export.verify import masked_logits, probe_batch

    out, _ = lora_run
    config = write_config(out, "template: chatml\nexport_size: 1\n")
    export_dir = out / "merged"
    result = run_cli("export", str(config), "model_name_or_path=builtin:tiny-llama",
                     f"adapter_name_or_path={out / 'adapter'}", f"export_dir={export_dir}")
    assert result.returncode == 0, result.stderr
    assert "max |logit diff|" in result.stdout
    assert (export_dir / "model.safetensors").is_file() and (export_dir / "chat_template.jinja").is_file()
    # Independently: the exported model equals base + adapter on a probe batch.
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(export_dir)
    batch = probe_batch(get_template("chatml"), tokenizer)
    source = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama_path), out / "adapter")
    exported = AutoModelForCausalLM.from_pretrained(export_dir)
    assert (masked_logits(source, batch) - masked_logits(exported, batch)).abs().max() < 1e-4


@pytest.mark.slow
def test_rerun_resumes_from_the_last_checkpoint(tmp_path):
    config = write_config(tmp_path)
    args = [*TRAIN, f"output_dir={tmp_path / 'out'}", "save_steps=2", "max_steps=2"]
    assert run_cli("train", str(config), *args).returncode == 0
    again = run_cli("train", str(config), *args)
    assert again.returncode == 0, again.stderr
    assert "resuming from" in again.stdout and "checkpoint-2" in again.stdout
    fresh = run_cli("train", str(config), *args, "overwrite_output_dir=true")
    assert "resuming from" not in fresh.stdout


@pytest.mark.slow
def test_full_finetuning_saves_a_reloadable_model(tmp_path):
    config = write_config(tmp_path, "finetuning_type: full\n")
    result = run_cli("train", str(config), *TRAIN, f"output_dir={tmp_path / 'full'}", "max_steps=2")
    assert result.returncode == 0, result.stderr
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "full", dtype=torch.float32)
    assert type(model).__name__ == "LlamaForCausalLM"
    trainable = json.loads((tmp_path / "full" / "train_summary.json").read_text())["trainable_params"]
    assert trainable == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("yaml_text", "args", "message"), [
    ("lora_rnk: 8\n", [], "unknown key `lora_rnk`; did you mean `lora_rank`"),
    ("learning_rate: fast\n", [], "key `learning_rate` = 'fast'"),
    ("dataset: nowhere\n", [], "dataset `nowhere` is neither registered"),
    ("template: chatmel\n", [], "unknown template `chatmel`; did you mean `chatml`"),
    ("model_name_or_path: ./no/such/folder\n", [], "no such folder"),
    ("stage: sft\n", ["output_dir=/tmp/x"], "needs `dataset`"),
    ("stage: ppo\ndataset: identity\n", [], "`stage: ppo` scores completions with a reward model"),
])
def test_config_errors_are_one_clear_message(tmp_path, yaml_text, args, message):
    config = write_config(tmp_path, "model_name_or_path: builtin:tiny-llama\n" + yaml_text)
    result = run_cli("train", str(config), *args)
    assert result.returncode == 1
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_missing_dataset_file_names_the_file(tmp_path):
    (tmp_path / "dataset_info.json").write_text(json.dumps({"mine": {"file_name": "mine.json"}}))
    config = write_config(tmp_path, f"model_name_or_path: builtin:tiny-llama\ndataset: mine\n"
                                    f"dataset_dir: {tmp_path}\noutput_dir: {tmp_path / 'out'}\n")
    result = run_cli("train", str(config))
    assert result.returncode == 1
    assert f"dataset `mine`: file not found: {tmp_path / 'mine.json'}" in " ".join(result.stderr.split())


def test_debug_flag_shows_the_traceback(tmp_path):
    result = run_cli("--debug", "check", str(write_config(tmp_path, "lora_rnk: 8\n")))
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_check_prints_the_resolved_config(tmp_path):
    config = write_config(tmp_path, "model_name_or_path: builtin:tiny-llama\ntemplate: chatml\n"
                                    f"dataset: identity\ndataset_dir: {ROOT / 'examples' / 'data'}\n")
    result = run_cli("check", str(config), "learning_rate=2e-4")
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout and "learning_rate: 0.0002" in result.stdout
    assert "on this machine" in result.stdout and ("mixed precision" in result.stdout or "float32" in result.stdout)
    assert "lora_rank: 8" in result.stdout


def test_env_lists_versions():
    result = run_cli("env")
    assert result.returncode == 0
    for name in ("python", "torch", "transformers", "peft", "trl", "datasets", "accelerate", "devices", "cpu"):
        assert name in result.stdout
    assert "bf16 in hardware" in result.stdout or "no bf16 arithmetic" in result.stdout  # what bf16 trains in
    assert "requirements" in result.stdout and "all met" in result.stdout
    assert "lmforge[zero]" in result.stdout and f"deepspeed {metadata.version('deepspeed')}" in result.stdout  # extras


@pytest.mark.slow
def test_interactive_chat_streams_keeps_history_and_obeys_commands(tmp_path):
    config = write_config(tmp_path, "model_name_or_path: builtin:tiny-llama\ntemplate: chatml\n"
                                    "do_sample: false\nmax_new_tokens: 4\n")
    session = run_cli("chat", str(config), input="Hello\nAnd again\n/clear\nOnce more\n/exit\n", timeout=300)
    assert session.returncode == 0, session.stderr
    assert session.stdout.count("assistant>") == 3
    assert "history cleared" in session.stdout


@pytest.mark.slow
def test_export_fails_loudly_beyond_tolerance(lora_run):
    out, _ = lora_run
    config = write_config(out, "template: chatml\nexport_tolerance: 1.0e-12\n")
    result = run_cli("export", str(config), "model_name_or_path=builtin:tiny-llama",
                     f"adapter_name_or_path={out / 'adapter'}", f"export_dir={out / 'strict'}")
    assert result.returncode == 1
    assert "does not reproduce the source model" in " ".join(result.stderr.split())


def test_data_preview_and_stats(tmp_path):
    config = write_config(tmp_path, "model_name_or_path: builtin:tiny-llama\ntemplate: chatml\n"
                                    f"dataset: identity\ndataset_dir: {ROOT / 'examples' / 'data'}\n"
                                    "packing: true\ncutoff_len: 256\n")
    preview = run_cli("data", "preview", str(config), "--examples", "1")
    assert preview.returncode == 0, preview.stderr
    assert "rows per dataset: identity: 90" in preview.stdout and "packing: 90 examples in" in preview.stdout
    assert "example 1" in preview.stdout and "Saving the dataset" not in preview.stderr
    stats = run_cli("data", "stats", str(config), "--out", str(tmp_path / "lengths.png"))
    assert stats.returncode == 0, stats.stderr
    assert (tmp_path / "lengths.png").stat().st_size > 1000
    assert "tokens per example before truncation: min " in stats.stdout
    assert ", p90 " in stats.stdout and "; cutoff_len truncates 0 of 90 (0.0%)" in stats.stdout
    assert "length histogram (before truncation, cutoff_len marked)" in stats.stdout


@pytest.mark.slow
def test_lora_trains_with_shift_short_attention(tmp_path):
    config = write_config(tmp_path, "stage: sft\nfinetuning_type: lora\nshift_attn: true\n")
    out = tmp_path / "adapter"
    result = run_cli("train", str(config), *TRAIN, "max_steps=2", "val_size=8", "eval_strategy=steps",
                     "eval_steps=2", f"output_dir={out}")
    assert result.returncode == 0, result.stderr
    assert "shift_attn: S²-Attn while training" in result.stdout
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 2 and math.isfinite(summary["eval_loss"])
    saved = "".join(path.read_text() for path in out.glob("*.json"))
    assert "lmforge_s2_sdpa" not in saved  # the saved adapter/config loads anywhere, with full attention
