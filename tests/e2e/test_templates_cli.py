"""`lmforge template ...` and training on tool-calling data, as a user runs them."""

import json

import pytest

from tests.conftest import run_cli
from tests.refdata import refdata


def test_template_list_and_show():
    listed = run_cli("template", "list")
    assert listed.returncode == 0, listed.stderr
    assert "qwen3" in listed.stdout and "templates;" in listed.stdout
    shown = run_cli("template", "show", "llama3")
    assert shown.returncode == 0 and "<|start_header_id|>user<|end_header_id|>" in shown.stdout
    assert "mm_plugin: none (a text template)" in shown.stdout
    vision = run_cli("template", "show", "qwen2_vl")
    assert "mm_plugin: qwen2_vl (processors: Qwen2VLProcessor, Qwen2_5_VLProcessor; media: images, videos)" in (
        vision.stdout)
    unknown = run_cli("template", "show", "lama3")
    assert unknown.returncode == 1 and "did you mean `llama3`" in unknown.stderr


def test_template_check_prints_the_diff(smollm2_path):
    same = run_cli("template", "check", "smollm2", "--tokenizer", "builtin:smollm2-135m-instruct")
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout.count(": equal") == 3  # smollm2 has no tool slots
    other = run_cli("template", "check", "chatml", "--tokenizer", "builtin:smollm2-135m-instruct")
    assert other.returncode == 1 and "-You are a helpful AI assistant named SmolLM" in other.stdout


def test_template_derive_prints_a_working_registration():
    jinja = refdata("chat_templates", "gemma-3-it.jinja")
    result = run_cli("template", "derive", "--tokenizer", str(jinja), "--name", "my_gemma")
    assert result.returncode == 0, result.stderr
    assert 'register_template(\n    "my_gemma",' in result.stdout and "system_in_user=True" in result.stdout
    assert "reproduces the jinja template" in result.stdout
    namespace: dict = {}
    exec(result.stdout.split("\n# ")[0].replace("register_template(", "_registered = dict(name=", 1)
         .replace("from lmforge.data.templates.registry import register_template", ""), namespace)
    assert namespace["_registered"]["format_user"] == "<start_of_turn>user\n{{content}}<end_of_turn>\n"


def test_template_derive_out_then_check_with_the_file(tmp_path):
    jinja = refdata("chat_templates", "llama-3-instruct.jinja")
    registrations = tmp_path / "my_templates.py"
    derived = run_cli("template", "derive", "--tokenizer", str(jinja), "--name", "my_llama3", "--out",
                      str(registrations))
    assert derived.returncode == 0, derived.stderr
    assert f"template_file: {registrations}" in derived.stdout and "stop_words=('<|eot_id|>',)" in (
        registrations.read_text())
    checked = run_cli("template", "check", "my_llama3", "--tokenizer", str(jinja), "--template-file",
                      str(registrations))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count(": equal") == 3
    config = tmp_path / "run.yaml"
    config.write_text(f"template: my_llama3\ntemplate_file: {registrations}\n")
    preflight = run_cli("check", str(config), "model_name_or_path=builtin:tiny-llama")
    assert preflight.returncode == 0, preflight.stdout + preflight.stderr
    broken = 'register_template("broken", format_user=3, format_assistant="{{content}}")\n'
    registrations.write_text(registrations.read_text() + broken)
    failed = run_cli("check", str(config), "model_name_or_path=builtin:tiny-llama")  # before any weight loads
    assert failed.returncode == 1 and "my_templates.py: template `broken` cannot render" in failed.stderr
    glm = run_cli("template", "derive", "--tokenizer", str(refdata("chat_templates", "glm-4.5.jinja")))
    assert glm.returncode == 1 and "not expressible as slots: earlier turns are written differently" in glm.stdout
    assert "use `template: auto`" in glm.stdout


def test_template_modelfile():
    result = run_cli("template", "modelfile", "qwen")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("FROM .\n# Ollama Modelfile") and 'PARAMETER stop "<|im_end|>"' in result.stdout
    assert "{{ range $.Tools }}" in result.stdout and "PARAMETER num_ctx 4096" in result.stdout
    needs_tokens = run_cli("template", "modelfile", "llama2")
    assert needs_tokens.returncode == 1 and "--tokenizer" in needs_tokens.stderr


@pytest.mark.slow
def test_training_on_tool_calls_with_the_qwen_template(tmp_path):
    from transformers import AutoTokenizer

    data = refdata("llamafactory_data")
    out = tmp_path / "run"
    result = run_cli("train", str(_config(tmp_path)), "model_name_or_path=builtin:tiny-llama", "template=qwen",
                     "dataset=glaive_toolcall_en_demo", f"dataset_dir={data}", "max_samples=16", "cutoff_len=512",
                     "max_steps=3", "per_device_train_batch_size=4", "report_to=none", f"output_dir={out}")
    assert result.returncode == 0, result.stderr
    assert "rows per dataset: glaive_toolcall_en_demo: 16" in result.stdout
    # the tiny model's own chat template is plain ChatML: the cross-check warns with the diff
    assert "render a probe conversation differently" in result.stdout
    assert json.loads((out / "train_summary.json").read_text())["steps"] == 3
    # the saved tokenizer reproduces the training format, tools included
    saved = AutoTokenizer.from_pretrained(out)
    conversation = [{"role": "user", "content": "Weather?"},
                    {"role": "assistant", "content": "", "tool_calls": [
                        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]},
                    {"role": "tool", "content": "{\"t\": 3}"}]
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    text = saved.apply_chat_template(conversation, tools=tools, tokenize=False, add_generation_prompt=True)
    assert "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}\n</tool_call>" in text
    assert text.endswith("<tool_response>\n{\"t\": 3}\n</tool_response><|im_end|>\n<|im_start|>assistant\n")


@pytest.mark.slow
def test_strict_template_fails_before_training(tmp_path):
    result = run_cli("train", str(_config(tmp_path)), "model_name_or_path=builtin:tiny-llama", "template=llama3",
                     "strict_template=true", f"dataset_dir={refdata('llamafactory_data')}",
                     "dataset=alpaca_en_demo", "max_samples=4", "max_steps=1", f"output_dir={tmp_path / 'x'}")
    assert result.returncode == 1 and "strict_template: false" in result.stderr


def _config(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("stage: sft\nfinetuning_type: lora\n")
    return path


@pytest.mark.slow
def test_training_without_a_template_uses_the_tokenizers_own(tmp_path, tiny_llama_path):
    out = tmp_path / "run"
    result = run_cli("train", str(_config(tmp_path)), f"model_name_or_path={tiny_llama_path}",
                     f"dataset_dir={refdata('llamafactory_data')}", "dataset=alpaca_en_demo", "max_samples=8",
                     "max_steps=1", "per_device_train_batch_size=4", "report_to=none", f"output_dir={out}")
    assert result.returncode == 0, result.stderr
    assert "template `auto`)" in result.stdout and "differently" not in result.stdout
    # the tokenizer's own template is what was trained on, and what is saved
    assert (out / "chat_template.jinja").read_text() == (tiny_llama_path / "chat_template.jinja").read_text()
