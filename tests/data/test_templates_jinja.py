"""The jinja written into saved tokenizers renders what lmforge trained on; auto templates; cross-checks."""

import pytest
from transformers import AutoTokenizer

from lmforge.data.templates import get_template, list_templates
from lmforge.data.templates.auto import (
    PROBE,
    JinjaTemplate,
    compare_with_tokenizer,
    resolve_template,
    template_from_tokenizer,
)
from lmforge.data.templates.jinja import template_to_jinja
from lmforge.errors import TemplateError
from tests.data.template_cases import CASES, reference_jinja, render_reference, tokenizer_for

PLAIN = [name for name, case in CASES.items() if case.kind == "plain"]
TOOLS = [name for name, case in CASES.items() if case.kind == "tools"]


def _renderable(template, case):
    try:
        template.render_text(case.messages, tools=case.tools, bos_token="<s>", eos_token="</s>")
    except TemplateError:
        return False
    return True


@pytest.mark.parametrize("template", list_templates(), ids=lambda t: t.name)
@pytest.mark.parametrize("generation_prompt", [False, True], ids=["full", "prompt"])
def test_saved_jinja_renders_what_we_train_on(template, generation_prompt):
    names = PLAIN + (TOOLS if template.tools.name == "qwen" and template.can_render_tools else [])
    jinja = template_to_jinja(template)
    for name in names:
        case = CASES[name].prompt_case() if generation_prompt else CASES[name]
        if not _renderable(template, case) or template.thought_words:
            continue
        expected = template.render_text(case.messages, tools=case.tools, add_generation_prompt=generation_prompt,
                                        bos_token="<s>", eos_token="</s>")
        assert render_reference(jinja, case, generation_prompt, "<s>", "</s>") == expected, name


@pytest.mark.parametrize("name", ["qwen", "llama3", "gemma3", "phi_small"])
def test_saved_tokenizer_round_trips(name, tmp_path):
    template = get_template(name)
    tokenizer = tokenizer_for(template, "<s>", "</s>")
    tokenizer.chat_template = template_to_jinja(template)
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    for case_name in ["multi turn with system"] + (TOOLS if template.tools.name == "qwen" else []):
        case = CASES[case_name]
        text = reloaded.apply_chat_template([m.as_openai() for m in case.messages], tools=case.tools,
                                            tokenize=False, add_generation_prompt=False)
        assert text == template.render_text(case.messages, tools=case.tools, bos_token="<s>", eos_token="</s>")


@pytest.mark.parametrize("reference, registered", [("qwen2.5-instruct", "qwen"), ("llama-3-instruct", "llama3"),
                                                   ("gemma-3-it", "gemma3"), ("phi-4", "phi4")])
def test_auto_template_derives_the_boundaries_of_the_registered_one(reference, registered):
    template = get_template(registered)
    tokenizer = tokenizer_for(template, "<s>", "</s>")
    tokenizer.chat_template = reference_jinja(reference)
    auto = resolve_template(None, tokenizer)
    assert isinstance(auto, JinjaTemplate)
    tokens = dict(bos_token="<s>", eos_token="</s>")
    ours, derived = template.render(PROBE, **tokens), auto.render(PROBE, **tokens)
    assert "".join(s.text for s in derived) == "".join(s.text for s in ours)
    assert [s.text for s in derived if s.supervised] == [s.text for s in ours if s.supervised]


def test_auto_refuses_a_template_that_is_not_prefix_preserving():
    tokenizer = tokenizer_for(get_template("qwen3"), "", "<|im_end|>")
    tokenizer.chat_template = reference_jinja("qwen3")
    with pytest.raises(TemplateError, match=r"not prefix-preserving .* set `template: qwen3`"):
        template_from_tokenizer(tokenizer).render(CASES["multi turn"].messages)


def test_cross_check_shows_the_difference():
    tokenizer = tokenizer_for(get_template("qwen"), "", "<|im_end|>")
    tokenizer.chat_template = reference_jinja("qwen2.5-instruct")
    assert compare_with_tokenizer(get_template("qwen"), tokenizer) is None
    diff = compare_with_tokenizer(get_template("chatml"), tokenizer)
    assert diff is not None and "-<|im_start|>system" in diff and "You are Qwen" in diff
