"""`lmforge chat` options and `lmforge api` as a user runs them."""

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from PIL import Image

from tests.conftest import ROOT, run_cli

MODEL = ["model_name_or_path=builtin:tiny-llama", "template=chatml", "max_new_tokens=4"]


def _config(tmp_path):
    path = tmp_path / "chat.yaml"
    path.write_text("do_sample: true\n")
    return path


@pytest.mark.slow
def test_chat_prompt_with_several_candidates(tmp_path):
    result = run_cli("chat", str(_config(tmp_path)), *MODEL, "generation_seed=0", "--n", "3", "--prompt", "Hello!")
    assert result.returncode == 0, result.stderr
    assert [f"candidate {i}" in result.stdout for i in (1, 2, 3)] == [True] * 3
    assert "logprob" in result.stdout


@pytest.mark.slow
def test_chat_refuses_images_for_a_text_model_and_tools_for_now(tmp_path):
    image = tmp_path / "cat.png"
    Image.new("RGB", (4, 4)).save(image)
    result = run_cli("chat", str(_config(tmp_path)), *MODEL, "--image", str(image), "--prompt", "What is this?")
    assert result.returncode == 1 and "multimodal models are not supported yet" in " ".join(result.stderr.split())
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps([{"type": "function", "function": {"name": "weather"}}]))
    result = run_cli("chat", str(_config(tmp_path)), *MODEL, "--tools", str(tools), "--prompt", "Weather?")
    assert result.returncode == 1 and "tool calling is not supported yet" in " ".join(result.stderr.split())
    tools.write_text("{not json")
    result = run_cli("chat", str(_config(tmp_path)), *MODEL, "--tools", str(tools), "--prompt", "Weather?")
    assert result.returncode == 1 and "cannot read a JSON list" in " ".join(result.stderr.split())


@pytest.mark.slow
def test_repl_pick_keeps_another_candidate(tmp_path):
    session = subprocess.run([sys.executable, "-m", "lmforge.cli.main", "chat", str(_config(tmp_path)), *MODEL,
                              "--n", "2"], cwd=ROOT, input="Hello\n/pick 2\n/pick 9\n/system Be brief.\n/exit\n",
                             capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})
    assert session.returncode == 0, session.stderr
    assert "candidate 2" in session.stdout and "kept candidate 2" in session.stdout
    assert "/pick needs a candidate number" in session.stdout and "system prompt set" in session.stdout


@pytest.mark.slow
def test_api_command_serves_until_interrupted(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "lmforge.cli.main", "api", str(_config(tmp_path)), *MODEL,
                               "--port", str(port), "--model-id", "tiny"], cwd=ROOT, env={**os.environ},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "the api did not come up in 120 s"
            try:
                models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        assert models.json()["data"][0]["id"] == "tiny"
        out = io.BytesIO()
        Image.new("RGB", (2, 2)).save(out, format="PNG")
        url = "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()
        content = [{"type": "image_url", "image_url": {"url": url}}]
        refused = httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", timeout=60,
                             json={"model": "tiny", "messages": [{"role": "user", "content": content}]})
        assert refused.status_code == 400 and "multimodal" in refused.json()["error"]["message"]
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
