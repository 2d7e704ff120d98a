"""The web UI in headless Chromium (Debian's `chromium`, driven by Playwright).

`make test` installs chromium (as root, with apt-get) and playwright (dev extra); elsewhere the
browser tests skip with the reason.
"""

import shutil
import socket
import time
from pathlib import Path

import pytest

from lmforge.serve.webui.forms import loss_points, to_yaml, train_config
from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def test_train_form_becomes_a_config(tmp_path):
    from lmforge.config import build_config

    config = train_config("builtin:tiny-llama", "chatml", "identity", "examples/data", "lora", str(tmp_path),
                          1e-3, 4, 2, 128, 8)
    assert config["finetuning_type"] == "lora" and config["lora_rank"] == 8 and config["max_steps"] == 4
    build_config(config)  # the preview is always a valid config
    assert "finetuning_type: lora" in to_yaml(config)
    full = train_config("builtin:tiny-llama", "", "identity", "", "full", str(tmp_path), 1e-3, 4, 2, 128, 8)
    assert "lora_rank" not in full and "template" not in full


def test_loss_points_skip_a_line_being_written(tmp_path):
    (tmp_path / "trainer_log.jsonl").write_text('{"current_steps": 1, "loss": 2.5}\n{"current_steps": 2, "lo')
    assert loss_points(str(tmp_path)) == [(1, 2.5)]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root with apt-get)")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev extra")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists()
                                             else shutil.which("chromium"), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def webui(tmp_path_factory):
    from lmforge.serve.webui.app import build_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path_factory.mktemp("webui")
    app = build_app({"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "max_new_tokens": 6,
                     "dataset_dir": str(ROOT / "examples" / "data"), "output_dir": str(out / "run"),
                     "max_steps": 3, "per_device_train_batch_size": 2}, workdir=ROOT)
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, ssr_mode=False, quiet=True)
    yield f"http://127.0.0.1:{port}", out
    app.close()


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@pytest.fixture
def page(browser, webui):
    page = browser.new_page()
    page.set_default_timeout(60_000)
    page.goto(webui[0])
    yield page
    page.close()


@pytest.mark.slow
def test_page_loads_with_three_tabs_and_a_yaml_preview(page):
    for tab in ("Train", "Chat", "Export"):
        page.get_by_role("tab", name=tab).wait_for()
    expect(page.locator("#yaml_preview")).to_contain_text("finetuning_type: lora")


@pytest.mark.slow
def test_chat_round_trip_on_a_tiny_model(page):
    page.get_by_role("tab", name="Chat").click()
    page.locator("#load_model").click()
    expect(page.locator("#chat_status")).to_contain_text("loaded", timeout=120_000)
    page.locator("#chat_input textarea").fill("Hello there")
    page.locator("#send").click()
    bot = page.locator("#chatbot [data-testid='bot']")
    bot.first.wait_for(timeout=120_000)
    assert page.locator("#chatbot").inner_text().count("Hello there") == 1
    deadline = time.monotonic() + 60
    while not bot.first.inner_text().strip():
        assert time.monotonic() < deadline, "the answer stayed empty"
        time.sleep(0.2)


@pytest.mark.slow
def test_training_started_from_the_page_shows_a_loss_plot(page, webui):
    _, out = webui
    page.locator("#start_train").click()
    expect(page.locator("#train_status")).to_contain_text("train: ")
    page.locator("#loss_plot img").first.wait_for(timeout=240_000)
    expect(page.locator("#train_status")).to_contain_text("train: finished", timeout=240_000)
    assert "training summary" in page.locator("#train_log textarea").input_value()
    assert (out / "run" / "adapter_model.safetensors").is_file()


def test_chat_tab_sends_images_to_a_vision_language_model(tmp_path_factory, tmp_path):
    """The Chat tab's handler (no browser): an image reaches the model in its turn and stays there."""
    from PIL import Image

    from lmforge.config import build_config
    from lmforge.infer.factory import create_engine
    from lmforge.serve.webui.app import UiState, _chat_turn, _with_placeholders
    from lmforge.testing.tiny_vlm import build_tiny_vlm

    gradio = pytest.importorskip("gradio")
    image = tmp_path / "red.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(image)
    state = UiState(tmp_path)
    state.engine = create_engine(build_config({"model_name_or_path": "builtin:tiny-llama", "template": "chatml"}))
    try:
        with pytest.raises(gradio.Error, match="cannot take images"):
            list(_chat_turn(state, [], "What is this?", str(image), 1, "sample", 4, 0.7))
    finally:
        state.engine.close()
    folder = build_tiny_vlm(tmp_path_factory.mktemp("qwen2_vl"), "qwen2_vl")
    state.engine = create_engine(build_config({"model_name_or_path": str(folder), "template": "qwen2_vl"}))
    try:
        history, _ = list(_chat_turn(state, [], "What is this?", str(image), 1, "sample", 4, 0.7))[-1]
        assert history[-1]["role"] == "assistant" and list(state.chat_images) == [0]
        history, _ = list(_chat_turn(state, history, "And now?", None, 2, "sample", 4, 0.7))[-1]
        assert len(history) == 4 and list(state.chat_images) == [0]  # the first turn keeps its image
        turns, images = _with_placeholders([m for m in _turns(history)], state.chat_images)
        assert turns[0].content == "<image>What is this?" and turns[2].content == "And now?" and len(images) == 1
    finally:
        state.engine.close()


def _turns(history):
    from lmforge.data.templates.template import Message

    return [Message(turn["role"], turn["content"]) for turn in history]
