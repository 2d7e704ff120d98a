"""Every registered template with a reference is proven equal to the model's own chat_template."""

import pytest
from transformers.utils.chat_template_utils import render_jinja_template

from lmforge.data.processors.sft import IGNORE_INDEX, build_sft_example
from lmforge.data.templates import Message, get_template, list_templates
from lmforge.data.templates.encoding import encode_conversation, stop_token_ids
from lmforge.data.templates.jinja import template_to_jinja
from lmforge.errors import TemplateError
from tests.refdata import refdata

BOS, EOS = "<|begin_of_text|>", "<|im_end|>"
CONVERSATIONS = {
    "single turn": [Message("user", "Hello there!"), Message("assistant", "Hi! How can I help?")],
    "with system": [Message("system", "Be brief."), Message("user", "What is 2+2?"), Message("assistant", "4.")],
    "multi turn": [Message("user", "Name a colour."), Message("assistant", "Blue."),
                   Message("user", "Another one?"), Message("assistant", "Green, like grass.")],
    "multi turn with system": [Message("system", "You answer in French."), Message("user", "Hello"),
                               Message("assistant", "Bonjour !"), Message("user", "Thanks"),
                               Message("assistant", "De rien.")],
    "open question": [Message("user", "Only a question, no answer yet")],
    "multi-line content": [Message("user", "Line one\nline two"), Message("assistant", "Answer:\n- a\n- b")],
}
REFERENCED = [t for t in list_templates() if t.reference]


def _as_dicts(messages):
    return [{"role": m.role, "content": m.content} for m in messages]


def render_reference(jinja: str, messages, add_generation_prompt: bool) -> str:
    rendered = render_jinja_template([_as_dicts(messages)], chat_template=jinja,
                                     add_generation_prompt=add_generation_prompt, bos_token=BOS, eos_token=EOS)
    return rendered[0][0]


def test_registry_has_the_foundation_families():
    names = {t.name for t in list_templates()}
    assert {"chatml", "smollm2", "qwen", "qwen2", "llama3"} <= names
    assert get_template("qwen2.5") is get_template("qwen")


def test_unknown_template_lists_closest_names():
    with pytest.raises(TemplateError, match=r"unknown template `qwn`; did you mean `qwen"):
        get_template("qwn")


@pytest.mark.parametrize("template", REFERENCED, ids=lambda t: t.name)
@pytest.mark.parametrize("case", list(CONVERSATIONS))
@pytest.mark.parametrize("generation_prompt", [False, True], ids=["no-gen", "gen"])
def test_render_equals_reference_jinja(template, case, generation_prompt, tiny_tokenizer):
    reference = refdata("chat_templates", f"{template.reference}.jinja").read_text()
    messages = CONVERSATIONS[case]
    expected = render_reference(reference, messages, generation_prompt)
    ours = template.render_text(messages, add_generation_prompt=generation_prompt, bos_token=BOS, eos_token=EOS)
    assert ours == expected
    # The jinja we write into saved tokenizers renders the same string.
    assert render_reference(template_to_jinja(template), messages, generation_prompt) == expected
    # Encoding piece by piece gives the ids of tokenizing the whole reference rendering.
    tiny_tokenizer.bos_token, tiny_tokenizer.eos_token = BOS, EOS
    encoded = encode_conversation(template, tiny_tokenizer, messages, add_generation_prompt=generation_prompt)
    assert encoded.flat() == tiny_tokenizer.encode(expected, add_special_tokens=False)


@pytest.mark.parametrize("name", ["smollm2", "chatml", "qwen", "qwen2"])
@pytest.mark.parametrize("case", list(CONVERSATIONS))
def test_token_ids_equal_with_the_real_smollm2_tokenizer(name, case, smollm2_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    template = get_template(name)
    reference = refdata("chat_templates", f"{template.reference}.jinja").read_text()
    messages = CONVERSATIONS[case]
    expected = render_reference(reference, messages, True)
    encoded = encode_conversation(template, tokenizer, messages, add_generation_prompt=True)
    assert encoded.flat() == tokenizer.encode(expected, add_special_tokens=False)


@pytest.mark.parametrize("template", REFERENCED, ids=lambda t: t.name)
def test_loss_mask_is_exactly_answers_and_their_end_of_turn(template, tiny_tokenizer):
    from lmforge.data.conversation import Conversation

    messages = CONVERSATIONS["multi turn"]
    input_ids, labels, truncated = build_sft_example(
        Conversation(messages, None, "test"), template, tiny_tokenizer, cutoff_len=4096)
    assert not truncated and len(input_ids) == len(labels)
    spans, current = [], []
    for token, label in zip(input_ids, labels, strict=True):
        if label != IGNORE_INDEX:
            assert label == token
            current.append(token)
        elif current:
            spans.append(current)
            current = []
    if current:
        spans.append(current)
    end_of_turn = template.stop_words[0]
    answers = [m.content.strip() if template.strip_content else m.content for m in messages if m.role == "assistant"]
    assert [tiny_tokenizer.decode(span) for span in spans] == [a + end_of_turn for a in answers]
    assert stop_token_ids(template, tiny_tokenizer)[0] == tiny_tokenizer.convert_tokens_to_ids(end_of_turn)


def test_saved_tokenizer_chat_template_round_trips(tmp_path, tiny_tokenizer):
    from transformers import AutoTokenizer

    template = get_template("llama3")
    tiny_tokenizer.chat_template = template_to_jinja(template)
    tiny_tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    messages = CONVERSATIONS["multi turn with system"]
    text = reloaded.apply_chat_template(_as_dicts(messages), tokenize=False, add_generation_prompt=False)
    assert text == template.render_text(messages, bos_token=reloaded.bos_token, eos_token=reloaded.eos_token)


def test_template_without_system_slot_refuses_a_system_prompt():
    from lmforge.data.templates.template import Template

    template = Template(name="bare", format_user="Q: {{content}}\n", format_assistant="A: {{content}}\n")
    with pytest.raises(TemplateError, match="has no system slot"):
        template.render([Message("user", "x")], system="be nice")
