"""The web UI in headless Chromium (Debian's `chromium`, driven by Playwright), on a tiny model.

`make test` installs chromium (as root, with apt-get) and playwright (dev extra); elsewhere these tests
skip with the reason. The tests share one UI and run in file order, as a user would: train, stop,
save/load, predict with the trained adapter, chat with it, export it, switch the language.
Screenshots of each tab are written to a temporary folder (printed); with LMFORGE_WEBUI_SCREENSHOTS=DIR
they go to DIR too (`LMFORGE_WEBUI_SCREENSHOTS=docs/webui` refreshes the ones the docs show).
"""

import os
import re
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LONG = 300_000  # ms: a run's start includes loading torch in a fresh process on a busy machine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if executable is None:
        pytest.skip("Debian's chromium is not installed (make test installs it when run as root with apt-get)")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev extra")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def serving(defaults, work, chat=False):
    """The UI started with `defaults` in `work`, on a free port (`chat`: as `lmforge webchat` starts it): its
    address."""
    from lmforge.serve.webui.app import build_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = build_app(defaults, workdir=work, chat=chat)
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, ssr_mode=False, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        app.close()


@pytest.fixture(scope="module")
def webui(tmp_path_factory):
    work = tmp_path_factory.mktemp("webui")
    with serving({"dataset": [], "max_steps": 3, "per_device_train_batch_size": 2, "max_new_tokens": 8,
                  "save_steps": 2}, work) as address:
        yield address, work


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("webui_screenshots")
    print(f"screenshots: {folder}")
    return folder


@pytest.fixture(scope="module")
def elsewhere():
    """Every request the page made to another host than the UI's own (it must stay empty: offline)."""
    return []


@pytest.fixture(scope="module")
def page(browser, webui, elsewhere):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    page.on("request", lambda request: None if request.url.startswith((webui[0], "data:", "blob:"))
            else elsewhere.append(request.url))
    page.goto(webui[0])
    page.locator("#yaml_preview").wait_for()
    yield page
    page.close()


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=30_000)  # a busy machine answers events in seconds
    return playwright_expect(locator)


def shot(page, shots, name):
    page.screenshot(path=str(shots / f"{name}.png"), full_page=False)
    if docs := os.environ.get("LMFORGE_WEBUI_SCREENSHOTS"):
        Path(docs).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(docs) / f"{name}.png"), full_page=False)


def choose(page, elem_id, option):
    """Pick `option` from the dropdown `elem_id`, as a user does: open it, click the option."""
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")


def press(page, elem_id):
    """Click a button (a DOM click: Playwright's own waits for navigations the page never makes)."""
    page.locator(f"#{elem_id}").dispatch_event("click")


def fill(page, elem_id, value):
    box = page.locator(f"#{elem_id} input, #{elem_id} textarea").first
    box.fill(str(value))
    box.press("Tab")


def field_value(page, elem_id):
    return page.locator(f"#{elem_id} input, #{elem_id} textarea").first.input_value()


def test_lora_sft_from_the_dropdowns_shows_the_loss_plot_and_summary(page, webui, shots):
    _, work = webui
    choose(page, "field_model_name_or_path", "Tiny-Random-Llama")
    expect(page.locator("#field_template input")).to_have_value("chatml")  # the registry's template
    expect(page.locator("#model_note")).to_contain_text("text only")
    choose(page, "field_finetuning_type", "lora")
    choose(page, "field_stage", "sft")
    choose(page, "field_dataset", "identity")
    expect(page.locator("#yaml_preview")).to_contain_text("- identity")
    expect(page.locator("#train_command input, #train_command textarea").first).to_have_value(
        f"lmforge train {work / 'saves' / 'webui' / 'webui_train.yaml'}")
    expect(page.locator("#train_check")).to_contain_text("valid")
    shot(page, shots, "train")
    press(page, "start_train")
    expect(page.locator("#train_status")).to_contain_text("train: running")
    page.locator("#loss_plot img, #loss_plot canvas, #loss_plot svg").first.wait_for(timeout=LONG)
    expect(page.locator("#train_status")).to_contain_text("train: finished", timeout=LONG)
    expect(page.locator("#train_progress")).to_contain_text("3/3 (100%)")
    expect(page.locator("#train_summary")).to_contain_text("final_loss")
    log = page.locator("#train_log textarea")
    assert "training summary" in log.input_value()
    gap = log.evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight")
    assert gap < 8, "the log box does not follow the log"
    assert (work / "saves" / "webui" / "adapter_model.safetensors").is_file()
    page.locator("#train_progress").scroll_into_view_if_needed()
    shot(page, shots, "train_finished")


def test_invalid_value_is_marked_with_the_checks_message_and_start_refused(page):
    fill(page, "field_lora_rank", 0)
    expect(page.locator("#train_check")).to_contain_text("key `lora_rank` = 0: Input should be greater than 0")
    press(page, "start_train")
    expect(page.locator("#train_status")).to_contain_text("lmforge check")
    fill(page, "field_lora_rank", 16)
    expect(page.locator("#train_check")).to_contain_text("valid")


def test_start_and_stop_a_run(page, webui):
    _, work = webui
    fill(page, "field_max_steps", 100000)
    fill(page, "field_output_dir", work / "saves" / "long")
    press(page, "start_train")
    expect(page.locator("#train_progress")).to_contain_text("/100000", timeout=LONG)
    press(page, "stop_train")
    expect(page.locator("#train_status")).to_contain_text("train: stopped", timeout=20_000)
    fill(page, "field_max_steps", 3)
    fill(page, "field_output_dir", work / "saves" / "webui")


def test_save_then_load_a_config(page, webui):
    _, work = webui
    path = work / "configs" / "mine.yaml"
    fill(page, "config_path", path)
    press(page, "save_config")
    expect(page.locator("#config_file_status")).to_contain_text("saved")
    assert "lora_rank: 16" in path.read_text()
    fill(page, "field_lora_rank", 32)
    press(page, "load_config")
    expect(page.locator("#config_file_status")).to_contain_text("loaded", timeout=LONG)
    expect(page.locator("#field_lora_rank input")).to_have_value("16")


def test_predict_with_the_trained_adapter_shows_metrics_and_rows(page, webui, shots):
    _, work = webui
    press(page, "refresh_adapters")
    choose(page, "field_adapter_name_or_path", str(work / "saves" / "webui"))
    page.get_by_role("tab", name="Evaluate & Predict").click()
    choose(page, "eval_dataset", "identity")
    fill(page, "eval_max_samples", 4)
    press(page, "start_predict")
    expect(page.locator("#eval_status")).to_contain_text("predict: finished", timeout=LONG)
    expect(page.locator("#eval_metrics")).to_contain_text("bleu-4")
    expect(page.locator("#eval_predictions")).to_contain_text("Who are you?")
    shot(page, shots, "evaluate")


def test_chat_with_the_adapter_two_candidates_side_by_side(page, shots):
    page.get_by_role("tab", name="Chat").click()
    press(page, "load_model")
    expect(page.locator("#chat_status")).to_contain_text("adapters:", timeout=LONG)
    fill(page, "system_prompt", "You are Forge.")
    fill(page, "n_candidates", 2)
    fill(page, "chat_input", "Who are you?")
    press(page, "send")
    expect(page.locator("#candidates .candidate")).to_have_count(2, timeout=LONG)
    assert all(float(t) <= 0 for t in page.locator("#candidates .logprob").all_inner_texts())
    expect(page.locator("#chatbot")).to_contain_text("Who are you?")
    page.locator("#chat_input").scroll_into_view_if_needed()
    shot(page, shots, "chat")


@contextmanager
def chat_page(browser, work, family, template):
    """A UI started on the tiny `family` model, its Chat tab open with the model loaded."""
    from lmforge.testing.tiny_vlm import build_tiny_vlm

    folder = build_tiny_vlm(work / family, family)
    with serving({"model_name_or_path": str(folder), "template": template, "max_new_tokens": 8}, work) as address:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        try:
            page.goto(address)
            expect(page.locator("#model_note")).to_contain_text("multimodal")
            page.get_by_role("tab", name="Chat").click()
            press(page, "load_model")
            expect(page.locator("#chat_status")).to_contain_text(f"{template} template", timeout=LONG)
            yield page
        finally:
            page.close()


def test_chat_with_an_image_on_a_vision_language_model_two_candidates(browser, tmp_path_factory, shots):
    """A UI started on a tiny Qwen2-VL: an image uploaded beside the message reaches the model (a text-only
    model refuses it), and two candidates come back side by side."""
    from PIL import Image

    work = tmp_path_factory.mktemp("webui_vlm")
    image = work / "red.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(image)
    with chat_page(browser, work, "qwen2_vl", "qwen2_vl") as page:
        page.locator("#chat_image input[type=file]").set_input_files(str(image))
        page.locator("#chat_image img").first.wait_for()
        fill(page, "n_candidates", 2)
        fill(page, "chat_input", "What colour is this?")
        press(page, "send")
        expect(page.locator("#candidates .candidate")).to_have_count(2, timeout=LONG)
        expect(page.locator("#chatbot")).to_contain_text("What colour is this?")
        assert all(float(t) <= 0 for t in page.locator("#candidates .logprob").all_inner_texts())
        page.locator("#chat_input").scroll_into_view_if_needed()
        shot(page, shots, "chat_image")


def test_chat_with_an_audio_clip_on_an_audio_language_model(browser, tmp_path_factory, shots):
    """A UI started on a tiny Qwen2-Audio: a WAV file uploaded in the video/audio box reaches the model and the
    answer streams into the chat."""
    from tests.serve.test_webui import write_wav

    work = tmp_path_factory.mktemp("webui_audio")
    clip = write_wav(work / "tone.wav")
    with chat_page(browser, work, "qwen2_audio", "qwen2_audio") as page:
        page.get_by_role("button", name=re.compile(r"^video, audio")).click()  # open the accordion
        page.locator("#chat_audio input[type=file]").set_input_files(str(clip))
        page.locator("#chat_audio audio, #chat_audio .waveform-container, #chat_audio [data-testid]").first.wait_for()
        fill(page, "chat_input", "What do you hear?")
        press(page, "send")
        expect(page.locator("#chatbot [data-testid='bot']").first).to_be_visible(timeout=LONG)
        expect(page.locator("#chatbot")).to_contain_text("What do you hear?")
        page.locator("#chat_input").scroll_into_view_if_needed()
        shot(page, shots, "chat_audio")


def test_export_shows_the_verification_line(page, webui, shots):
    _, work = webui
    page.get_by_role("tab", name="Export").click()
    fill(page, "field_export_dir", work / "merged")
    choose(page, "field_export_gguf", "f16")
    expect(page.locator("#export_yaml")).to_contain_text("export_gguf")
    press(page, "start_export")
    expect(page.locator("#export_status")).to_contain_text("export: finished", timeout=LONG)
    expect(page.locator("#export_verification textarea")).to_have_value(re.compile(r"^verified: .*max \|logit diff\|"))
    assert (work / "merged" / "Modelfile").is_file()
    shot(page, shots, "export")


def test_switch_language_and_follow_the_browser(page, browser, webui, shots):
    page.get_by_role("tab", name="Train").click()
    choose(page, "language", "zh")
    page.get_by_role("tab", name="训练").wait_for()
    expect(page.locator("#start_train")).to_have_text("开始")
    shot(page, shots, "train_zh")
    choose(page, "language", "en")
    page.get_by_role("tab", name="Train").wait_for()
    context = browser.new_context(locale="zh-CN")
    try:
        chinese = context.new_page()
        chinese.goto(webui[0])
        chinese.get_by_role("tab", name="对话").wait_for(timeout=60_000)
    finally:
        context.close()


def test_the_page_made_no_request_to_another_host(page, elsewhere):
    assert page.locator("#network_note").inner_text().startswith("Served on http://127.0.0.1")
    assert elsewhere == []


def test_an_idle_page_makes_no_requests(page):
    """The tabs poll their run once a second only while it has something to show (each poll costs a busy
    browser a redraw of the whole page): with every run ended and shown, the page is quiet."""
    made = []
    page.on("request", lambda request: made.append(request))
    page.wait_for_timeout(4_000)
    assert [request.url for request in made] == []


def test_webchat_opens_on_chat_with_the_configs_model_loaded(browser, tmp_path):
    """`lmforge webchat CONFIG`: no tab to pick and no button to press before the first question."""
    with serving({"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "max_new_tokens": 4},
                 tmp_path, chat=True) as address:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(address)
            expect(page.locator("#chat_status")).to_contain_text("loaded builtin:tiny-llama (chatml template",
                                                                 timeout=LONG)
            fill(page, "chat_input", "Hello?")
            press(page, "send")
            expect(page.locator("#chatbot [data-testid='bot']").first).to_be_visible(timeout=LONG)
        finally:
            page.close()
