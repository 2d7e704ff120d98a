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
from tests.infer.test_tools import WEATHER

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
def test_chat_checks_images_and_tools(tmp_path):
    image = tmp_path / "cat.png"
    Image.new("RGB", (4, 4)).save(image)
    result = run_cli("chat", str(_config(tmp_path)), *MODEL, "--image", str(image), "--prompt", "What is this?")
    assert result.returncode == 1 and "cannot take images: it is served as a text-only model" in " ".join(
        result.stderr.split())
    tools = tmp_path / "tools.json"
    tools.write_text("{not json")
    result = run_cli("chat", str(_config(tmp_path)), *MODEL, "--tools", str(tools), "--prompt", "Weather?")
    assert result.returncode == 1 and "cannot read a JSON list" in " ".join(result.stderr.split())
    tools.write_text(json.dumps([WEATHER]))
    result = run_cli("chat", str(_config(tmp_path)), *MODEL, "template=qwen", "--tools", str(tools),
                     "--prompt", "Weather in Paris?")
    assert result.returncode == 0, result.stderr  # a random model writes no call: its text is the answer


@pytest.mark.slow
@pytest.mark.parametrize("family", ["qwen2_vl", "llava"])
def test_chat_answers_a_prompt_about_an_image(tmp_path, family):
    from lmforge.testing.tiny_vlm import build_tiny_vlm

    folder = build_tiny_vlm(tmp_path / family, family)
    image = tmp_path / "red.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(image)
    result = run_cli("chat", str(_config(tmp_path)), f"model_name_or_path={folder}", f"template={family}",
                     "max_new_tokens=4", "--image", str(image), "--prompt", "What is this?")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


@pytest.mark.slow
def test_repl_tools_images_and_tool_results(tmp_path):
    from lmforge.testing.tiny_vlm import build_tiny_vlm

    folder = build_tiny_vlm(tmp_path / "qwen2_vl", "qwen2_vl")
    image = tmp_path / "red.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(image)
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps([WEATHER]))
    script = (f"/image {image}\nWhat is this?\n/tools {tools}\n/tool 21 degrees\n/image {tmp_path / 'none.png'}\n"
              "/tools off\n/exit\n")
    session = run_cli("chat", str(_config(tmp_path)), f"model_name_or_path={folder}", "template=qwen2_vl",
                      "max_new_tokens=4", input=script, timeout=300)
    assert session.returncode == 0, session.stderr
    out = " ".join(session.stdout.split())
    assert "image attached to your next message (1 waiting)" in out and "assistant>" in out
    assert "tools on offer: get_weather" in out and "no tools on offer" in out
    assert "/tool answers a tool call of the model's last answer, and there is none waiting" in out
    assert "image file not found" in out  # an error in the REPL is reported, the session goes on


@pytest.mark.slow
def test_repl_pick_keeps_another_candidate(tmp_path):
    session = run_cli("chat", str(_config(tmp_path)), *MODEL, "--n", "2",
                      input="Hello\n/pick 2\n/pick 9\n/system Be brief.\n/exit\n", timeout=300)
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
        assert refused.status_code == 400 and "cannot take images" in refused.json()["error"]["message"]
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)


@pytest.mark.slow
def test_api_reads_llamafactory_environment_variables(tmp_path):
    """API_HOST, API_PORT, API_KEY and API_MODEL_NAME set what the options would, as in LLaMA-Factory."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {key: value for key, value in os.environ.items() if key != "LMFORGE_API_KEY"}
    env.update(API_HOST="127.0.0.1", API_PORT=str(port), API_KEY="sesame", API_MODEL_NAME="my-model")
    server = subprocess.Popen([sys.executable, "-m", "lmforge.cli.main", "api", str(_config(tmp_path)), *MODEL],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "the api did not come up in 120 s"
            try:
                refused = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        assert refused.status_code == 401
        models = httpx.get(f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": "Bearer sesame"})
        assert models.json()["data"][0]["id"] == "my-model"
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
