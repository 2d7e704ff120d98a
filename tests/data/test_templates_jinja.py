"""The jinja written into saved tokenizers renders what lmforge trained on; auto templates; cross-checks."""

from dataclasses import replace

import jinja2
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
from lmforge.data.templates.messages import Message, ToolCall
from lmforge.data.templates.tool_formats import TOOL_FORMATS
from lmforge.errors import TemplateError
from lmforge.testing.tiny import family_tokenizer
from tests.data.template_cases import (
    CASES,
    TODAY,
    WEATHER_TOOL,
    Case,
    reference_jinja,
    render_reference,
    template_special_tokens,
)


def fresh_tokenizer(template, bos: str, eos: str):
    """A tokenizer of the family's tokens that tests may change (chat_template, eos) without side effects."""
    return family_tokenizer(template_special_tokens(template), bos, eos)


PLAIN = [name for name, case in CASES.items() if case.kind == "plain"]
TOOLS = [name for name, case in CASES.items() if case.kind == "tools"]


def _renderable(template, case):
    try:
        template.render_text(case.messages, tools=case.tools, bos_token="<s>", eos_token="</s>", date=TODAY)
    except TemplateError:
        return False
    return True


@pytest.mark.parametrize("template", list_templates(), ids=lambda t: t.name)
@pytest.mark.parametrize("generation_prompt", [False, True], ids=["full", "prompt"])
def test_saved_jinja_renders_what_we_train_on(template, generation_prompt):
    names = PLAIN + (TOOLS if template.can_render_tools else [])
    # "thinking on" (true) trains what `auto` leaves out, and `false` drops thoughts from training data:
    # training policies; the saved template renders thoughts by `auto` and thinking off at the prompt.
    if template.thought_words and template.default_thinking == "auto":
        names += [name for name, case in CASES.items() if case.kind == "thinking" and name != "thinking on"]
    jinja = template_to_jinja(template)
    for name in names:
        case = CASES[name].prompt_case() if generation_prompt else CASES[name]
        # the saved template takes call ids from the messages, as OpenAI-style requests carry them
        case = replace(case, messages=template.with_call_ids(case.messages))
        if not _renderable(template, case):
            continue
        expected = template.render_text(case.messages, tools=case.tools, add_generation_prompt=generation_prompt,
                                        enable_thinking=case.thinking, bos_token="<s>", eos_token="</s>", date=TODAY)
        assert render_reference(jinja, case, generation_prompt, "<s>", "</s>") == expected, name


# a template of each tool format (`default`: the generic Human/Assistant one); every format must have one here
TOOL_FORMAT_TEMPLATES = {"default": "default", "qwen": "qwen", "hermes": "qwen", "hermes3": "hermes3",
                         "llama3": "llama3_2", "llama4": "llama4", "mistral": "mistral_v3",
                         "mistral_v7": "mistral_tekken",
                         "mistral_small": "mistral_small", "glm4": "chatglm3", "granite": "granite3",
                         "command_r7b": "command_r7b", "internlm2": "intern2", "nemotron": "nemotron_nano_v2",
                         "gpt_oss": "gpt_oss", "deepseek3": "deepseek3", "deepseek3.1": "deepseek3.1",
                         "olmo3": "olmo3", "granite4": "granite4_1",
                         "qwen3_coder": "qwen3_coder", "ministral3": "ministral3_reasoning",
                         "glm4_moe": "glm4_moe_nothink", "glm4_7": "glm4_7_nothink",
                         "qwen3_5": "qwen3_5", "minimax2": "minimax2",
                         "lfm2": "lfm2", "lfm2.5": "lfm2_5", "kimi_k2": "kimi_k2", "seed_oss": "seed_oss",
                         "exaone4": "exaone4", "smollm3": "smollm3", "gemma4": "gemma4"}


def test_every_tool_format_has_a_round_trip_template():
    assert set(TOOL_FORMAT_TEMPLATES) | {"xml"} == set(TOOL_FORMATS)


ROUND_TRIPS = ["qwen", "qwen3", "llama3", "gemma3", "phi_small", *sorted(set(TOOL_FORMAT_TEMPLATES.values()))]


@pytest.mark.parametrize("name", ROUND_TRIPS)
def test_saved_tokenizer_round_trips(name, tmp_path):
    template = get_template(name)
    _round_trip(template, tmp_path)


def test_saved_tokenizer_round_trips_the_xml_tool_format(tmp_path):
    _round_trip(get_template("qwen").with_tool_format("xml"), tmp_path)


def _round_trip(template, tmp_path):
    tokenizer = fresh_tokenizer(template, "<s>", "</s>")
    tokenizer.chat_template = template_to_jinja(template)
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    for case_name in ["multi turn with system"] + (TOOLS if template.can_render_tools else []):
        case = CASES[case_name]
        messages = template.with_call_ids(case.messages)  # requests carry call ids; datasets get lmforge's
        text = reloaded.apply_chat_template([m.as_openai() for m in messages], tools=case.tools,
                                            tokenize=False, add_generation_prompt=False)
        assert text == template.render_text(messages, tools=case.tools, bos_token="<s>", eos_token="</s>"), case_name
    if template.empty_thought_on_final:  # thinking off at the generation prompt, as Qwen3's own template does
        question = [{"role": "user", "content": "Hi"}]
        text = reloaded.apply_chat_template(question, tokenize=False, add_generation_prompt=True,
                                            enable_thinking=False)
        assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


@pytest.mark.parametrize("reference, registered", [("qwen2.5-instruct", "qwen"), ("llama-3-instruct", "llama3"),
                                                   ("gemma-3-it", "gemma3"), ("phi-4", "phi4")])
def test_auto_template_derives_the_boundaries_of_the_registered_one(reference, registered):
    template = get_template(registered)
    tokenizer = fresh_tokenizer(template, "<s>", "</s>")
    tokenizer.chat_template = reference_jinja(reference)
    auto = resolve_template(None, tokenizer)
    assert isinstance(auto, JinjaTemplate)
    tokens = dict(bos_token="<s>", eos_token="</s>")
    ours, derived = template.render(PROBE, **tokens), auto.render(PROBE, **tokens)
    assert "".join(s.text for s in derived) == "".join(s.text for s in ours)
    assert [s.text for s in derived if s.supervised] == [s.text for s in ours if s.supervised]


def test_auto_trains_a_template_that_is_not_prefix_preserving():
    tokenizer = fresh_tokenizer(get_template("qwen3"), "", "<|im_end|>")
    tokenizer.chat_template = reference_jinja("qwen3")
    examples = template_from_tokenizer(tokenizer).examples(CASES["multi turn"].messages, eos_token="<|im_end|>")
    assert len(examples) == 2  # tests/data/test_templates_auto.py proves each context


def test_cross_check_shows_the_difference():
    tokenizer = fresh_tokenizer(get_template("qwen"), "", "<|im_end|>")
    tokenizer.chat_template = reference_jinja("qwen2.5-instruct")
    assert compare_with_tokenizer(get_template("qwen"), tokenizer) is None
    diff = compare_with_tokenizer(get_template("chatml"), tokenizer)
    assert diff is not None and "-<|im_start|>system" in diff and "You are Qwen" in diff


def _reference_names() -> list[str]:
    from tests.data.template_cases import reference_index

    try:
        return sorted(reference_index())
    except pytest.skip.Exception:
        return []


@pytest.mark.parametrize("reference", _reference_names())
def test_derive_gives_a_registration_that_check_passes_or_names_the_construct(reference):
    """Every refdata jinja: a registration reproducing its text, trained answers and stop words (then the
    `template check` comparison passes), or `not expressible: <construct>; use template: auto`."""
    from lmforge.cli.template import check_cases
    from lmforge.data.templates.derive import compare_renderings, derive_template
    from tests.data.template_cases import reference_index

    row = reference_index()[reference]
    bos, eos = row["bos_token"], row["eos_token"]
    derived = derive_template(reference_jinja(reference), "derived", bos, eos)
    if derived.not_expressible:
        assert "use `template: auto`" in derived.not_expressible and derived.not_expressible.split(";")[0].strip()
        return
    assert derived.reproduces, derived.mismatches
    assert derived.registration().startswith('register_template(\n    "derived",')
    results = compare_renderings(derived.template, reference_jinja(reference), bos, eos,
                                 check_cases(derived.template.can_render_tools))
    assert all(diff is None or diff.startswith("not comparable") for _, diff in results), results
    assert any(diff is None for _, diff in results)


def test_derive_trains_what_glm45_generates_or_says_why_not():
    """The registration derived from GLM-4.5's jinja used to claim it reproduced the template while it supervised
    no end-of-turn and had no stop words; the verdict now covers training, and GLM-4.5's history construct."""
    from lmforge.data.templates.derive import derive_template, training_mismatches
    from lmforge.data.templates.template import Template

    derived = derive_template(reference_jinja("glm-4.5"), "glm", "", "<|endoftext|>")
    assert not derived.reproduces and "earlier turns are written differently" in derived.not_expressible
    unsupervised_end = Template(name="x", format_user="<|user|>\n{{content}}", format_generation="<|assistant|>",
                                format_assistant="\n<think></think>\n{{content}}", format_prefix="[gMASK]<sop>")
    problems = training_mismatches(unsupervised_end, reference_jinja("glm-4.5"), "", "<|endoftext|>")
    assert any("trained answers" in problem for problem in problems)


def test_derive_refuses_a_template_that_rewrites_history():
    from lmforge.data.templates.derive import derive_template

    derived = derive_template(reference_jinja("qwen3"), "x")
    assert "not prefix-preserving" in derived.not_expressible and "template: auto" in derived.not_expressible


def test_modelfile_for_llama3_matches_ollamas_shape():
    from lmforge.data.templates.modelfile import template_to_modelfile

    text = template_to_modelfile(get_template("llama3"), bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
                                 parameters={"num_ctx": 4096})
    assert '{{ $prev := "" }}<|begin_of_text|>{{ if or $system $.Tools }}<|start_header_id|>system<|end_header_id|>' \
           "\n\n" in text
    assert text.count('PARAMETER stop "<|eot_id|>"') == 1 and 'PARAMETER stop "<|eom_id|>"' in text
    assert text.rstrip().endswith("PARAMETER num_ctx 4096")
    with pytest.raises(TemplateError, match="--tokenizer"):
        template_to_modelfile(get_template("llama3"))


def test_modelfile_of_an_auto_template_derives_its_slots_or_says_why_there_is_none():
    """`template: auto` has only the jinja: a Modelfile gets the slots derived from it where they reproduce it."""
    from lmforge.data.templates.auto import auto_template
    from lmforge.data.templates.modelfile import modelfile_slots, template_to_modelfile

    text = template_to_modelfile(auto_template(reference_jinja("qwen2.5-instruct"), "", "<|im_end|>"),
                                 eos_token="<|im_end|>")
    assert "# slots derived from the model's jinja chat template" in text
    assert "<|im_start|>user\n{{ .Content }}<|im_end|>\n" in text and 'PARAMETER stop "<|im_end|>"' in text
    assert 'SYSTEM """You are Qwen, created by Alibaba Cloud. You are a helpful assistant."""' in text
    qwen3 = auto_template(reference_jinja("qwen3"), "", "<|im_end|>")
    slots, why = modelfile_slots(qwen3, "", "<|im_end|>")
    assert slots is None and "not prefix-preserving" in why and "template: auto" not in why
    with pytest.raises(TemplateError, match=r"no Modelfile: .*not prefix-preserving"):
        template_to_modelfile(qwen3, eos_token="<|im_end|>")


def test_saved_tokenizer_gets_the_end_of_turn_as_eos_for_replace_eos_templates():
    from lmforge.data.templates.jinja import prepare_saved_tokenizer

    template = get_template("qwen")
    tokenizer = family_tokenizer(["<|im_start|>", "<|im_end|>"], "", "<|endoftext|>")  # a base model's eos
    prepare_saved_tokenizer(template, tokenizer)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.chat_template == template_to_jinja(template)
    plain = family_tokenizer(["<start_of_turn>", "<end_of_turn>"], "<bos>", "<eos>")
    prepare_saved_tokenizer(get_template("gemma2"), plain)
    assert plain.eos_token == "<eos>"


def test_saved_olmo3_template_escapes_pythonic_calls_as_lmforge_does():
    template = get_template("olmo3")
    call = ToolCall("note", {"text": "it's a \\ path\nand a line\r", "tags": ["a'b"], "ratio": -0.5, "none": None,
                             "on": True, "off": False, "nested": {"k": [1, "x"]}})
    case = Case([Message("user", "Note it."), Message("assistant", "", (call,)), Message("tool", "ok"),
                 Message("assistant", "Done.")], tools=[WEATHER_TOOL])
    jinja = template_to_jinja(template)
    expected = template.render_text(case.messages, tools=case.tools, bos_token="<s>", eos_token="</s>")
    assert "note(text='it\\'s a \\\\ path\\nand a line\\r', tags=[\"a'b\"]" in expected
    assert render_reference(jinja, case, False, "<s>", "</s>") == expected
    # OpenAI-style requests with the arguments as a JSON string: jinja cannot parse them into pythonic values
    with pytest.raises(jinja2.exceptions.TemplateError, match="pythonic calls need the arguments as an object"):
        render_reference(jinja, case, False, "<s>", "</s>", arguments_as_json=True)
