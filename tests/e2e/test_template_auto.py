"""`template: auto` end to end on a template that rewrites history (Qwen3's): train, then chat."""

import json

import pytest

from tests.conftest import run_cli
from tests.refdata import refdata


@pytest.mark.slow
def test_train_and_chat_with_the_tokenizers_own_qwen3_template(tmp_path):
    from transformers import AutoTokenizer

    from lmforge.testing.tiny import build_tiny_model

    jinja = refdata("chat_templates", "qwen3.jinja").read_text(encoding="utf-8")
    model = build_tiny_model(tmp_path / "model", chat_template=jinja)
    rows = [{"messages": [{"role": "user", "content": f"Name colour {i}."},
                          {"role": "assistant", "content": f"<think>\nPick one.\n</think>\n\nBlue {i}."},
                          {"role": "user", "content": "Another?"},
                          {"role": "assistant", "content": f"<think>\nNot blue.\n</think>\n\nGreen {i}."}]}
            for i in range(8)]
    data = tmp_path / "colours.json"
    data.write_text(json.dumps(rows), encoding="utf-8")
    config = tmp_path / "run.yaml"
    config.write_text("stage: sft\nfinetuning_type: lora\ntemplate: auto\n")
    out = tmp_path / "run"
    result = run_cli("train", str(config), f"model_name_or_path={model}", f"dataset={data}", "cutoff_len=256",
                     "max_steps=2", "per_device_train_batch_size=4", "report_to=none", f"output_dir={out}")
    assert result.returncode == 0, result.stderr
    # each answer in its own generation-time context: the first answer's thought is not in the second's history
    assert "8 conversations are trained as several examples" in result.stdout
    assert "examples: 16 train" in result.stdout
    assert json.loads((out / "train_summary.json").read_text())["steps"] == 2
    assert AutoTokenizer.from_pretrained(out).chat_template == jinja  # auto keeps the tokenizer's own template

    chat = tmp_path / "chat.yaml"
    chat.write_text("template: auto\ndo_sample: false\nmax_new_tokens: 4\nenable_thinking: false\n")
    answered = run_cli("chat", str(chat), f"model_name_or_path={model}", f"adapter_name_or_path={out}",
                       "--prompt", "Name a colour.")
    assert answered.returncode == 0, answered.stderr
