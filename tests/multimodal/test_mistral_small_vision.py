"""Mistral-Small 3.1 / 3.2 (`mistral_small_vision`, the registry's template for them): a conversation with an image
renders as Mistral-Small-3.2's own chat template renders it (refdata `mistral-v7-tekken`, its image blocks
included), the example is the Mistral3 processor's expansion of that rendering with only the answers supervised,
and a step trains through the runner on the tiny Mistral-3 family. The text battery (tools, default system
prompt) is tests/data/test_templates_parity.py, which proves this template against the same reference."""

import json
import math

import pytest
from transformers.utils.chat_template_utils import render_jinja_template

from lmforge.config import build_config
from lmforge.data.conversation import Conversation
from lmforge.data.labels import IGNORE_INDEX
from lmforge.data.multimodal.examples import MMEncoder
from lmforge.data.multimodal.media import MediaOptions, decode_media
from lmforge.data.multimodal.plugin import PLACEHOLDERS, mm_plugin_for
from lmforge.data.templates import get_template
from lmforge.data.templates.template import Message
from lmforge.errors import TemplateError
from lmforge.hub.registry import get_model
from lmforge.model.fit import check_model_fit
from tests.data.template_cases import reference_jinja
from tests.multimodal.conftest import demo_conversations, load_vlm
from tests.refdata import refdata

FAMILY = "mistral3"  # Mistral3ForConditionalGeneration with Pixtral's processor, as Mistral-Small 3.1 / 3.2
OPTIONS = MediaOptions(image_max_pixels=64 * 64)
SYSTEM = Message("system", "You describe pictures.")


def with_system(conversation: Conversation) -> Conversation:
    """The demo row with a system prompt (the default one carries today's date; the parity battery proves it)."""
    return Conversation([SYSTEM, *conversation.messages], None, conversation.source, media=conversation.media)


def reference_messages(messages: list[Message]) -> list[dict]:
    """The conversation as a client sends it to the model's own template: `<image>` as an image block."""
    out = []
    for message in messages:
        if PLACEHOLDERS["images"] not in message.content:
            out.append({"role": message.role, "content": message.content})
            continue
        blocks: list[dict] = []
        for index, text in enumerate(message.content.split(PLACEHOLDERS["images"])):
            if index:
                blocks.append({"type": "image"})
            if text:
                blocks.append({"type": "text", "text": text})
        out.append({"role": message.role, "content": blocks})
    return out


def reference_rendering(messages: list[Message], bos: str, eos: str) -> str:
    rendered = render_jinja_template([reference_messages(messages)], chat_template=reference_jinja("mistral-v7-tekken"),
                                     bos_token=bos, eos_token=eos)
    return rendered[0][0]


def test_the_registry_gives_mistral_small_3_1_and_3_2_the_vision_template():
    for name in ("Mistral-Small-3.1-24B-Base", "Mistral-Small-3.1-24B-Instruct", "Mistral-Small-3.2-24B-Instruct"):
        model = get_model(name)
        assert (model.template, model.modality) == ("mistral_small_vision", "image"), name
    assert get_model("Mistral-Small-24B-Instruct-2501").template == "mistral_small"  # the text-only 2501
    vision, text = get_template("mistral_small_vision"), get_template("mistral_small")
    assert vision.mm_plugin == "pixtral" and not text.multimodal
    assert vision.references == text.references == ("mistral-v7-tekken", "mistral-common-v7")


def test_an_image_conversation_is_the_processors_expansion_of_the_models_own_rendering(tiny_vlm):
    processor, model = load_vlm(tiny_vlm(FAMILY), FAMILY)
    tokenizer = processor.tokenizer
    plugin = mm_plugin_for(processor)
    encoder = MMEncoder(processor, plugin, get_template("mistral_small_vision"), OPTIONS, 4096,
                        model_config=model.config)
    for conversation in map(with_system, demo_conversations("mllm_demo.json", "images", 2)):
        example = encoder.encode(conversation)
        text = reference_rendering(conversation.messages, tokenizer.bos_token, tokenizer.eos_token)
        assert text.count("[IMG]") == len(conversation.media["images"]) and text.startswith(
            f"{tokenizer.bos_token}[SYSTEM_PROMPT]You describe pictures.[/SYSTEM_PROMPT][INST]")
        images = decode_media(conversation.media, OPTIONS, conversation.source).items("images")
        expected = processor(text=[text], images=images, add_special_tokens=False, return_tensors="pt")
        assert example.input_ids == expected["input_ids"][0].tolist(), conversation.source
        answers = [m.content for m in conversation.messages if m.role == "assistant"]
        supervised = [t for t, label in zip(example.input_ids, example.labels, strict=True) if label != IGNORE_INDEX]
        assert tokenizer.decode(supervised) == "".join(answer + tokenizer.eos_token for answer in answers)


def test_the_text_template_on_mistral_small_vision_checkpoint_names_the_vision_one(tiny_vlm):
    cfg = build_config({"model_name_or_path": str(tiny_vlm(FAMILY)), "template": "mistral_small"})
    with pytest.raises(TemplateError, match="`mistral_small_vision`"):
        check_model_fit(cfg.model, cfg.finetuning, get_template("mistral_small"), "chat")


def test_one_lora_step_trains_through_the_runner(tiny_vlm, tmp_path, monkeypatch):
    from lmforge.train.runner import run_training

    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))
    out = tmp_path / "lora"
    run_training(build_config({
        "stage": "sft", "model_name_or_path": str(tiny_vlm(FAMILY)), "template": "mistral_small_vision",
        "dataset": "mllm_demo", "dataset_dir": str(refdata("llamafactory_data")), "finetuning_type": "lora",
        "max_steps": 1, "max_samples": 2, "per_device_train_batch_size": 2, "learning_rate": 1e-3,
        "logging_steps": 1, "report_to": "none", "image_max_pixels": 4096, "cutoff_len": 4096,
        "output_dir": str(out)}))
    losses = [line["loss"] for line in map(json.loads, (out / "trainer_log.jsonl").read_text().splitlines())
              if "loss" in line]
    assert len(losses) == 1 and math.isfinite(losses[0]) and losses[0] > 0
    assert "[SYSTEM_PROMPT]" in (out / "chat_template.jinja").read_text()
