"""The quickstart on the real SmolLM2: it must really learn its new identity and keep its knowledge."""

import pytest

from tests.conftest import ROOT, run_cli


@pytest.mark.slow
def test_quickstart_teaches_the_real_model_who_it_is(tmp_path, smollm2_path):
    out = tmp_path / "lora"
    train = run_cli("train", "examples/quickstart/train.yaml", f"output_dir={out}", cwd=ROOT)
    assert train.returncode == 0, train.stderr
    chat = ["chat", "examples/quickstart/chat.yaml", f"adapter_name_or_path={out}"]
    who = run_cli(*chat, "--prompt", "Who are you?", cwd=ROOT)
    assert who.returncode == 0, who.stderr
    assert "Forge" in who.stdout and "lmforge" in who.stdout
    paris = run_cli(*chat, "--prompt", "What is the capital of France?", cwd=ROOT)
    assert "Paris" in paris.stdout
    before = run_cli(*chat, "adapter_name_or_path=null", "--prompt", "Who are you?", cwd=ROOT)
    assert "Forge" not in before.stdout  # the base model did not know it
    export = run_cli("export", "examples/quickstart/export.yaml", f"adapter_name_or_path={out}",
                     f"export_dir={tmp_path / 'merged'}", cwd=ROOT)
    assert export.returncode == 0, export.stderr
    merged = run_cli(*chat, f"model_name_or_path={tmp_path / 'merged'}", "adapter_name_or_path=null",
                     "--prompt", "Who are you?", cwd=ROOT)
    assert "Forge" in merged.stdout
