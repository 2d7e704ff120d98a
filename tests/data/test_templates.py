"""The registry, the loss mask of every template, real-tokenizer ids, and the thinking policy."""

import pytest

from lmforge.data.conversation import Conversation
from lmforge.data.labels import IGNORE_INDEX
from lmforge.data.processors.sft import build_sft_example
from lmforge.data.templates import Message, get_template, list_templates
from lmforge.data.templates.encoding import encode_conversation, stop_token_ids
from lmforge.data.templates.registry import TEMPLATES
from lmforge.data.templates.template import Template
from lmforge.errors import TemplateError
from tests.data.template_cases import CASES, reference_jinja, reference_tokens, render_reference, tokenizer_for

# every template name LLaMA-Factory registers (its src/llamafactory/data/template.py), so its configs' `template:`
# values work
LLAMA_FACTORY_TEMPLATES = {
    "aeva", "alpaca", "bailing", "bailing_v2", "breeze", "chatglm3", "chatml", "chatml_de", "cohere", "cpm4", "dbrx",
    "deepseek", "deepseek3", "deepseekcoder", "deepseekr1", "default", "dots_ocr", "empty", "ernie", "ernie_nothink",
    "ernie_vl", "exaone", "falcon", "falcon_h1", "fewshot", "gemma", "gemma2", "gemma3", "gemma3n", "gemma4",
    "gemma4n", "glm4", "glm4_5v", "glm4_7", "glm4_moe", "glm4v", "glm_ocr", "glmz1", "gpt_oss", "granite3",
    "granite3_vision", "granite4", "hunyuan", "hunyuan_small", "hy3", "hy_dense_1_8b", "hy_dense_7b", "index",
    "intern2", "intern_s1", "intern_vl", "keye_vl", "kimi_vl", "lfm2", "lfm2_vl", "llama2", "llama2_zh", "llama3",
    "llama4", "llava", "llava_next", "llava_next_llama3", "llava_next_mistral", "llava_next_qwen",
    "llava_next_video", "llava_next_video_mistral", "llava_next_video_yi", "llava_next_yi", "mimo", "mimo_v2",
    "mimo_vl", "minicpm_o", "minicpm_v", "minicpm_v_4_6", "minimax1", "minimax2", "ministral", "ministral3",
    "mistral", "mistral_small", "mllama", "moonlight", "moss_vl", "olmo", "openchat", "openchat-3.6", "opencoder",
    "paligemma", "paligemma_chat", "phi", "phi4", "phi4_mini", "phi_small", "pixtral", "qwen", "qwen2_audio",
    "qwen2_omni", "qwen2_vl", "qwen3", "qwen3_5", "qwen3_5_nothink", "qwen3_6", "qwen3_nothink", "qwen3_omni",
    "qwen3_omni_nothink", "qwen3_vl", "qwen3_vl_nothink", "sailor", "seed_coder", "seed_oss", "smollm", "smollm2",
    "solar", "starchat", "telechat2", "vicuna", "video_llava", "xuanyuan", "yi", "yi_vl", "youtu", "youtu_vl",
    "yuan", "zephyr"}


def _tokens(template: Template) -> tuple[str, str]:
    return reference_tokens(template.reference) if template.reference else ("<s>", "</s>")


def test_registry_covers_the_families_users_rely_on():
    names = {t.name for t in list_templates()}
    assert len(names) >= 130 and set(TEMPLATES.names()) >= LLAMA_FACTORY_TEMPLATES
    assert get_template("qwen2.5") is get_template("qwen")


def test_unknown_template_lists_closest_names():
    with pytest.raises(TemplateError, match=r"unknown template `qwn`; did you mean `qwen"):
        get_template("qwn")


def _supervised_spans(input_ids: list[int], labels: list[int]) -> list[list[int]]:
    spans, current = [], []
    for token, label in zip(input_ids, labels, strict=True):
        if label != IGNORE_INDEX:
            assert label == token
            current.append(token)
        elif current:
            spans.append(current)
            current = []
    return spans + ([current] if current else [])


@pytest.mark.parametrize("template", list_templates(), ids=lambda t: t.name)
def test_loss_mask_is_exactly_answers_and_their_end_of_turn(template):
    """Supervised: each answer as the assistant slot writes it, ending in the end-of-turn token (or eos)."""
    bos, eos = _tokens(template)
    tokenizer = tokenizer_for(template, bos, eos)
    messages = CASES["multi turn"].messages
    input_ids, labels, truncated = build_sft_example(
        Conversation(messages, None, "test"), template, tokenizer, cutoff_len=4096)
    assert not truncated and len(input_ids) == len(labels)
    answers = [m.content for m in messages if m.role == "assistant"]
    expected = [(template.empty_thought or "")  # the family's empty think block, which the model writes
                + template.format_assistant.replace("{{eos_token}}", eos).replace("{{content}}", a)
                + (eos if template.efficient_eos else "") for a in answers]
    if template.end_in_history:  # earlier answers are written back with a token the model never generates
        expected[:-1] = [text.removesuffix(template.end_in_history[0]) for text in expected[:-1]]
    assert [tokenizer.decode(span) for span in _supervised_spans(input_ids, labels)] == expected
    # the end-of-turn token: the first stop word, or the tokenizer's eos where the slot writes {{eos_token}}
    ending = eos if template.efficient_eos or not template.stop_words else template.stop_words[0]
    assert all(text.rstrip(" ").endswith(ending) for text in (expected[-1:] if template.end_in_history else expected))
    if not template.efficient_eos:
        assert stop_token_ids(template, tokenizer)[0] == tokenizer.convert_tokens_to_ids(ending)


TOOL_TEMPLATES = [template for template in list_templates() if template.can_render_tools]


@pytest.mark.parametrize("template", TOOL_TEMPLATES, ids=lambda t: t.name)
def test_loss_mask_with_tool_calls_is_exactly_answers_calls_and_end_of_turn(template):
    """With tools: each answer with its calls as the format writes them, and its end-of-turn, is supervised;
    tool definitions and results are not."""
    bos, eos = _tokens(template)
    tokenizer = tokenizer_for(template, bos, eos)
    case = CASES["tool calls with system and text"]
    messages = template.with_call_ids(case.messages)
    input_ids, labels, _ = build_sft_example(Conversation(messages, None, "test", tools=case.tools), template,
                                             tokenizer, cutoff_len=8192)
    expected = []
    for message in (m for m in messages if m.role == "assistant"):
        text = message.content.strip() if template.strip_content else message.content
        if message.tool_calls:
            text = template.tools.join(text, template.tools.render_calls(message.tool_calls))
        slot = template.format_function if message.tool_calls and template.format_function else (
            template.format_assistant)
        expected.append((template.empty_thought or "") + slot.replace("{{eos_token}}", eos).replace(
            "{{content}}", text)
            + (eos if template.efficient_eos else ""))
    if template.end_in_history:
        expected[:-1] = [text.removesuffix(template.end_in_history[0]) for text in expected[:-1]]
    spans = [tokenizer.decode(span) for span in _supervised_spans(input_ids, labels)]
    assert spans == expected
    assert not any('{"temperature": 21}' in span or "Current weather of a city." in span for span in spans)


def test_tool_calls_are_supervised_and_tool_results_are_not():
    template = get_template("qwen")
    tokenizer = tokenizer_for(template, "", "<|im_end|>")
    case = CASES["tool calls with system and text"]
    input_ids, labels, _ = build_sft_example(Conversation(case.messages, None, "test", tools=case.tools), template,
                                             tokenizer, cutoff_len=4096)
    spans = [tokenizer.decode(span) for span in _supervised_spans(input_ids, labels)]
    assert spans[0].startswith("Let me check.\n<tool_call>\n{\"name\": \"get_weather\"")
    assert spans[0].endswith("</tool_call><|im_end|>") and spans[1] == "21 °C at 14:05.<|im_end|>"
    assert not any("tool_response" in span or "get_weather\", \"description" in span for span in spans)


def test_deepseek_answers_after_tool_results_are_trained_without_a_header():
    """DeepSeek's answer to tool results follows `<｜tool▁outputs▁end｜>` directly (its calls after a header):
    the results and headers are prompt, the calls and the answer are trained with their end-of-sentence."""
    template = get_template("deepseek3")
    tokenizer = tokenizer_for(template, *_tokens(template))
    case = CASES["tool calls in turn"]
    input_ids, labels, _ = build_sft_example(Conversation(case.messages, None, "test", tools=case.tools), template,
                                             tokenizer, cutoff_len=4096)
    spans = [tokenizer.decode(span) for span in _supervised_spans(input_ids, labels)]
    calls = "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>{}\n```json\n{}\n```<｜tool▁call▁end｜>" \
            "<｜tool▁calls▁end｜><｜end▁of▁sentence｜>"
    assert spans == [calls.format("get_time", '{"city": "Paris"}'),
                     calls.format("get_weather", '{"city": "Paris", "unit": "celsius"}'),
                     "Paris: 21 °C.<｜end▁of▁sentence｜>"]
    prompt = tokenizer.decode([t for t, label in zip(input_ids, labels, strict=True) if label == IGNORE_INDEX])
    assert prompt.endswith('{"temperature": 21}<｜tool▁output▁end｜><｜tool▁outputs▁end｜>')
    assert prompt.count("<｜Assistant｜>") == 2  # the first answer's and the second call's, not the last answer's
    ask = template.render_text(case.prompt_case().messages, tools=case.tools, add_generation_prompt=True)
    assert ask.endswith("<｜tool▁outputs▁end｜>")  # the generation prompt after results adds nothing (R1: no <think>)
    r1 = get_template("deepseekr1").render_text(case.prompt_case().messages, add_generation_prompt=True)
    assert r1.endswith("<｜tool▁outputs▁end｜>")


@pytest.mark.parametrize("thinking, spans, prompt_has_empty_block", [
    ("auto", ["Blue.<|im_end|>"], True),
    ("false", ["Blue.<|im_end|>"], True),
    ("true", ["<think>\n\n</think>\n\nBlue.<|im_end|>"], False),
])
def test_thinking_policy_never_trains_an_empty_block_unasked(thinking, spans, prompt_has_empty_block):
    template = get_template("qwen3")
    tokenizer = tokenizer_for(template, "", "<|im_end|>")
    messages = CASES["thinking on"].messages
    input_ids, labels, _ = build_sft_example(Conversation(messages, None, "t"), template, tokenizer,
                                             cutoff_len=512, enable_thinking=thinking)
    assert [tokenizer.decode(s) for s in _supervised_spans(input_ids, labels)] == spans
    prompt = tokenizer.decode([t for t, label in zip(input_ids, labels, strict=True) if label == IGNORE_INDEX])
    assert ("<think>\n\n</think>" in prompt) is prompt_has_empty_block


def test_thoughts_in_the_data_are_kept_and_trained_under_auto():
    template = get_template("qwen3")
    tokenizer = tokenizer_for(template, "", "<|im_end|>")
    messages = CASES["thoughts"].messages
    input_ids, labels, _ = build_sft_example(Conversation(messages, None, "t"), template, tokenizer, cutoff_len=512)
    spans = [tokenizer.decode(s) for s in _supervised_spans(input_ids, labels)]
    # Qwen3 drops thoughts of earlier turns from the history (as its own template does); the last one is trained.
    assert spans == ["Blue.<|im_end|>", "<think>\nNot blue again.\n</think>\n\nGreen.<|im_end|>"]


def test_efficient_eos_trains_a_stop_the_format_lacks():
    template = get_template("chatglm3")
    tokenizer = tokenizer_for(template, "", "</s>")
    messages = CASES["single turn"].messages
    shown = template.render_text(messages, eos_token="</s>")
    assert not shown.endswith("</s>")  # what the model's own template renders
    input_ids, labels, _ = build_sft_example(Conversation(messages, None, "t"), template, tokenizer, cutoff_len=512)
    assert tokenizer.decode(_supervised_spans(input_ids, labels)[0]) == "\n Hi! How can I help?</s>"


@pytest.mark.parametrize("name", ["smollm2", "chatml", "qwen", "qwen2"])
@pytest.mark.parametrize("case", ["single turn", "multi turn with system", "multi-line content"])
def test_token_ids_equal_with_the_real_smollm2_tokenizer(name, case, smollm2_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    template = get_template(name)
    prompt = CASES[case].prompt_case()
    expected = render_reference(reference_jinja(template.reference), prompt, True,
                                *reference_tokens(template.reference))
    encoded = encode_conversation(template, tokenizer, prompt.messages, add_generation_prompt=True)
    assert encoded.flat() == tokenizer.encode(expected, add_special_tokens=False)


def test_template_without_system_slot_refuses_a_system_prompt():
    template = Template(name="bare", format_user="Q: {{content}}\n", format_assistant="A: {{content}}\n")
    with pytest.raises(TemplateError, match="has no system slot"):
        template.render([Message("user", "x")], system="be nice")
    with pytest.raises(TemplateError, match="has no slot for tool results"):
        template.render([Message("user", "x"), Message("tool", "{}")])


@pytest.mark.parametrize("name", ["qwq", "phi4_reasoning"])
def test_thinking_true_opens_a_think_block_in_every_trained_answer(name):
    template = get_template(name)
    tokenizer = tokenizer_for(template, *_tokens(template))
    messages = CASES["thinking on"].messages
    input_ids, labels, _ = build_sft_example(Conversation(messages, None, "t"), template, tokenizer,
                                             cutoff_len=4096, enable_thinking="true")
    end = template.stop_words[0]
    assert [tokenizer.decode(s) for s in _supervised_spans(input_ids, labels)] == [f"<think>\n\n</think>\n\nBlue.{end}"]


def test_config_keys_for_templates():
    from lmforge.config import build_config
    from lmforge.data.templates.select import select_template

    cfg = build_config({"template": "qwen3", "tool_format": "xml", "enable_thinking": True, "strict_template": True})
    assert cfg.data.enable_thinking == "true" and cfg.model.strict_template
    assert select_template(cfg.model.template, None, cfg.model.tool_format).tool_format == "xml"
    with pytest.raises(TemplateError, match="unknown tool_format `json`"):
        select_template("qwen", None, "json")
    with pytest.raises(TemplateError, match="applies to registered templates"):
        select_template("auto", "/some/model", "qwen")
    assert select_template(None, "/some/model") is None  # auto: the tokenizer's own template
