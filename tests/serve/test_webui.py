"""The web UI without a browser: the form generated from the config schema, what it writes, the run
control, the files it reads back, the languages, and the Chat tab's handler on a tiny VLM.
The browser tests are in test_webui_browser.py."""

import json
import signal
import subprocess
import sys
import time

import pytest

from lmforge.serve.webui import outputs
from lmforge.serve.webui.i18n import from_accept_language, languages, strings
from lmforge.serve.webui.schema import check_config, field_specs, form_config, widget_values
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def app_blocks(tmp_path_factory):
    pytest.importorskip("gradio")
    from lmforge.serve.webui.app import build_app

    app = build_app({"model_name_or_path": "builtin:tiny-llama", "template": "chatml"},
                    workdir=tmp_path_factory.mktemp("webui"))
    return app


def test_every_config_key_of_every_group_has_a_field_in_the_ui(app_blocks):
    """The form is the schema: each key has exactly one widget (elem_id field_KEY), with its description."""
    from lmforge.config.groups import GROUPS

    ids = [block.elem_id for block in app_blocks.blocks.values() if getattr(block, "elem_id", None)]
    fields = [elem_id.removeprefix("field_") for elem_id in ids if elem_id.startswith("field_")]
    every_key = {key for model in GROUPS.values() for key in model.model_fields}
    assert set(fields) == every_key and len(fields) == len(every_key)
    assert "LoRA rank r." in field_specs()["lora_rank"].info and "range >0" in field_specs()["lora_rank"].info


@pytest.mark.parametrize("method", ["lora", "full", "freeze"])
def test_the_yaml_of_each_stage_and_method_passes_lmforge_check(tmp_path, method):
    """What the UI writes for every registered stage with each method passes `lmforge check` (the real command)."""
    from lmforge.serve.webui.app import initial_values
    from lmforge.serve.webui.choices import stage_names
    from lmforge.serve.webui.widgets import to_yaml

    data = ROOT / "examples" / "multimodal" / "data"
    for stage in stage_names():
        values = widget_values(initial_values({"model_name_or_path": "builtin:tiny-llama", "template": "chatml",
                                               "stage": stage, "finetuning_type": method}, tmp_path))
        if stage in ("rm", "dpo"):
            values.update(dataset=["mm_dpo_demo"], dataset_dir=str(data))
        if stage in ("grpo", "rloo", "ppo"):  # online stages learn from a reward the user names
            values.update(reward_funcs=["accuracy"])
        config = form_config(values)
        message, _ = check_config(config, deep=True)
        assert message == "", (stage, message)
        if stage == "sft":  # the in-process check is `lmforge check`: run the command itself once per method
            path = tmp_path / f"{stage}.yaml"
            path.write_text(to_yaml(config))
            done = subprocess.run([sys.executable, "-m", "lmforge.cli.main", "check", str(path)],
                                  capture_output=True, text=True, cwd=tmp_path)
            assert done.returncode == 0, done.stdout + done.stderr


def test_widgets_round_trip_a_saved_config():
    config = {"model_name_or_path": "builtin:tiny-llama", "dataset": ["identity"], "lora_target": ["q_proj", "v_proj"],
              "lora_rank": 4, "learning_rate": 0.01, "packing": False, "bf16": True, "lr_scheduler_type": "cosine",
              "export_gguf": ["f16"], "quantization_bit": 4, "enable_thinking": "false", "stop_strings": ["</s>"],
              "accelerator_config": {"split_batches": True}}
    values = widget_values(config, lists=frozenset({"dataset"}))
    assert values["lora_target"] == "q_proj,v_proj" and values["packing"] == "False"
    assert values["quantization_bit"] == "4"
    written = form_config(values)
    written["lora_target"] = written["lora_target"].split(",")
    written["stop_strings"] = [written["stop_strings"]]
    assert written == config
    assert form_config(widget_values({})) == {}  # an untouched form writes nothing but the user's choices


def test_loading_a_config_sets_only_the_widgets_whose_value_it_changes(app_blocks, tmp_path):
    """Each widget a handler sets fires its change event (a preview redrawn): loading the config just saved, with
    one field edited since, sets that field alone."""
    import gradio as gr

    handlers = {block_fn.name: block_fn for block_fn in app_blocks.fns.values()}
    language, path = "en", str(tmp_path / "mine.yaml")
    keys = [component.elem_id.removeprefix("field_") for component in handlers["load_config"].inputs[2:]]
    values = [component.value for component in handlers["load_config"].inputs[2:]]
    handlers["save_config"].fn(language, path, *values)
    saved_rank = values[keys.index("lora_rank")]
    values[keys.index("lora_rank")] = saved_rank * 2
    status, *updates = handlers["load_config"].fn(language, path, *values)
    assert status.startswith("loaded")
    changed = {key: update for key, update in zip(keys, updates, strict=True) if update != gr.skip()}
    assert changed == {"lora_rank": saved_rank}


def test_invalid_values_are_named_with_the_checks_own_message():
    from lmforge.config import build_config
    from lmforge.errors import ConfigError

    config = {"lora_rank": 0, "learning_rate": -1.0, "model_name_or_path": "builtin:tiny-llama"}
    message, keys = check_config(config)
    with pytest.raises(ConfigError) as raised:
        build_config(config)
    assert message == str(raised.value) and keys == {"lora_rank", "learning_rate"}
    assert "greater than 0" in message


def test_stop_works_when_sigint_is_ignored_and_reports_stopped(tmp_path):
    """A UI started in the background (`lmforge webui &`) has SIGINT ignored, and so would its runs."""
    from lmforge.serve.webui.runner import STOP_GRACE_S, CommandRun

    config = tmp_path / "train.yaml"
    config.write_text(f"model_name_or_path: builtin:tiny-llama\ntemplate: chatml\ndataset: identity\n"
                      f"dataset_dir: {ROOT / 'examples' / 'data'}\noutput_dir: {tmp_path / 'out'}\nmax_steps: 100000\n"
                      "logging_steps: 1\nper_device_train_batch_size: 1\n")
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        run = CommandRun(["train"], config, tmp_path)
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.monotonic() + 240
    while not (tmp_path / "out" / "trainer_log.jsonl").is_file():
        assert run.running and time.monotonic() < deadline, run.log()
        time.sleep(0.5)
    asked = time.monotonic()
    run.stop()
    # SIGTERM ends it (after the run saves its checkpoint), not the kill that follows the grace period
    assert time.monotonic() - asked < STOP_GRACE_S and not run.running
    assert run.state == "stopped" and run.status() == "train: stopped"


def test_the_live_plot_draws_the_stages_metrics_losses_together_others_apart(tmp_path):
    from lmforge.serve.webui.choices import stage_plots

    records = [{"current_steps": 1, "loss": 2.5, "reward": 0.1, "rewards/accuracies": 0.5},
               {"current_steps": 2, "loss": 2.0, "eval_loss": 2.2, "eval_accuracy": 0.4, "reward": 0.3}]
    (tmp_path / "trainer_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    figure = outputs.loss_figure(str(tmp_path), stage_plots("sft"))
    drawn = [[line.get_label() for line in axis.get_lines()] for axis in figure.axes]
    assert drawn == [["loss", "eval_loss"], ["eval_accuracy"]]
    assert [[line.get_label() for line in axis.get_lines()] for axis in
            outputs.loss_figure(str(tmp_path), stage_plots("grpo")).axes] == [["loss"], ["reward"]]
    assert [[line.get_label() for line in axis.get_lines()] for axis in
            outputs.loss_figure(str(tmp_path), stage_plots("dpo")).axes] == [["loss", "eval_loss"],
                                                                              ["rewards/accuracies"]]
    assert stage_plots("sf") == outputs.PLOTTED  # a stage name half typed


def test_outputs_read_back_progress_predictions_and_verification(tmp_path):
    (tmp_path / "trainer_log.jsonl").write_text(
        '{"current_steps": 1, "total_steps": 4, "loss": 2.5, "percentage": 25.0, "elapsed_s": 3, "remaining_s": 9}\n'
        '{"current_steps": 2, "lo')
    assert outputs.loss_points(str(tmp_path)) == [(1, 2.5)]
    assert "1/4 (25%)" in outputs.progress_html(str(tmp_path), "ETA") and "ETA 0:09" in outputs.progress_html(
        str(tmp_path), "ETA")
    (tmp_path / "generated_predictions.jsonl").write_text(json.dumps({"prompt": "hi", "predict": "yo", "label": "hey"}))
    assert outputs.prediction_rows(str(tmp_path)) == [["hi", "yo", "hey"]]
    log = "merged 1 adapter(s)\nverified: merged model, max |logit diff| = 1e-06 (tolerance 0.001) on 4 probe prompts"
    assert outputs.verification_lines(log).startswith("verified: merged model")


def test_languages_have_the_same_strings_and_follow_the_browser():
    assert {"en", "zh"} <= set(languages())
    assert set(strings("zh")) == set(strings("en"))
    assert from_accept_language("zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert from_accept_language("fr-FR,de;q=0.5") == "en" and from_accept_language(None) == "en"


def chat_exchange(state, history, message, image=None, video=None, audio=None, n=1):
    """One Send in the Chat tab (its handler, as the button calls it): (history, candidates html)."""
    from lmforge.serve.webui.chat_tab import chat_turn

    return list(chat_turn(state, "en", history, message, image, video, audio, "You are terse.", "", n, "sample", 1.0,
                          4, 0.7, 0.9, 50, 1.0))[-1]


def write_wav(path, seconds=1.0, rate=16000):
    """A 440 Hz tone as a 16-bit mono WAV file."""
    import math
    import struct
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                                 for i in range(int(seconds * rate))))
    return path


def test_chat_tab_sends_images_to_a_vision_language_model(tmp_path_factory, tmp_path):
    """The Chat tab's handler: an image reaches the model in its turn and stays there; a text model refuses it."""
    from PIL import Image

    from lmforge.serve.webui.chat_tab import with_placeholders
    from lmforge.serve.webui.state import UiState
    from lmforge.testing.tiny_vlm import build_tiny_vlm

    gradio = pytest.importorskip("gradio")
    image = tmp_path / "red.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(image)
    state = UiState(tmp_path)

    def turn(history, message, picture, n=1):
        return chat_exchange(state, history, message, picture, n=n)

    state.load_engine({"model_name_or_path": "builtin:tiny-llama", "template": "chatml"})
    try:
        with pytest.raises(gradio.Error, match="cannot take images"):
            turn([], "What is this?", str(image))
    finally:
        state.close_engine()
    folder = build_tiny_vlm(tmp_path_factory.mktemp("qwen2_vl"), "qwen2_vl")
    state.load_engine({"model_name_or_path": str(folder), "template": "qwen2_vl"})
    try:
        history, _ = turn([], "What is this?", str(image))
        assert history[-1]["role"] == "assistant" and list(state.chat_media) == [0]
        history, listing = turn(history, "And now?", None, n=2)
        assert list(state.chat_media) == [0] and listing.count("class='candidate'") == 2
        from lmforge.data.templates.template import Message

        turns, media = with_placeholders([Message(t["role"], t["content"]) for t in history
                                          if not t.get("metadata")], state.chat_media)
        assert turns[0].content == "<image>What is this?" and len(media["images"]) == 1 and list(media) == ["images"]
    finally:
        state.close_engine()


def test_chat_tab_sends_audio_to_an_audio_language_model(tmp_path_factory, tmp_path):
    """An audio clip reaches Qwen2-Audio in its turn and stays there; an image or a video is refused with what
    the model takes."""
    from lmforge.serve.webui.state import UiState
    from lmforge.testing.tiny_vlm import build_tiny_vlm

    gradio = pytest.importorskip("gradio")
    clip = write_wav(tmp_path / "tone.wav")
    folder = build_tiny_vlm(tmp_path_factory.mktemp("qwen2_audio"), "qwen2_audio")
    state = UiState(tmp_path)
    state.load_engine({"model_name_or_path": str(folder), "template": "qwen2_audio"})
    try:
        history, _ = chat_exchange(state, [], "What do you hear?", audio=str(clip))
        assert history[-1]["role"] == "assistant" and state.chat_media == {0: {"audios": [str(clip)]}}
        history, listing = chat_exchange(state, history, "And now?", n=2)
        assert list(state.chat_media) == [0] and listing.count("class='candidate'") == 2
        with pytest.raises(gradio.Error, match=r"cannot take videos: its processor .* takes audios only"):
            chat_exchange(state, history, "This?", video=str(clip))
    finally:
        state.close_engine()


def test_a_thought_and_a_tool_call_are_shown_folded_as_such():
    from lmforge.data.templates.messages import ToolCall
    from lmforge.serve.webui.chat_tab import answer_turns, read_tools

    turns = answer_turns("en", "<think>\nadd them\n</think>\n\nIt is 5.", (), ("<think>", "</think>"))
    assert turns == [{"role": "assistant", "content": "add them", "metadata": {"title": "thinking", "status": "done"}},
                     {"role": "assistant", "content": "It is 5."}]
    call = ToolCall("add", {"a": 2, "b": 3})
    turns = answer_turns("zh", "", (call,), None)
    assert turns == [{"role": "assistant", "content": '```json\n{"a": 2, "b": 3}\n```',
                      "metadata": {"title": "工具调用: add", "status": "done"}}]
    assert read_tools("") is None and read_tools('{"name": "add"}') == [{"name": "add"}]
