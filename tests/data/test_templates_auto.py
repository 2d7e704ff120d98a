"""`template: auto` on every jinja chat template in refdata: each supervised answer is trained in the context
the template itself shows the model when it generates that answer, the loss mask covers exactly the answers
and their end-of-turn, and the inference prompt is `apply_chat_template(add_generation_prompt=True)`."""

import os
import re
from functools import cache

import pytest

from lmforge.data.conversation import Conversation
from lmforge.data.labels import IGNORE_INDEX
from lmforge.data.processors.sft import tokenize_sft
from lmforge.data.templates.auto import resolve_template
from lmforge.data.templates.encoding import encode_conversation, stop_token_ids
from lmforge.data.templates.messages import Message, assign_tool_call_ids, normalize_tools, split_thought
from lmforge.errors import TemplateError
from lmforge.testing.tiny import family_tokenizer
from tests.data.template_cases import CASES, reference_index, reference_jinja
from tests.refdata import refdata

_MARKERS = re.compile(r"<\|[^|\s<>]+\|>|<｜[^｜]+｜>|<\|[a-z_\"]+>|<[a-z_\"]+\|>|\[/?[A-Z_]+\]|</?[a-zA-Z_:]+>"
                      r"|\[e~\[|\]~[a-z]!?[a-z]?\]~?")


def _names() -> list[str]:
    try:
        return sorted(reference_index())
    except pytest.skip.Exception:
        return []


@cache
def auto_tokenizer(name: str):
    """A tokenizer carrying the template's marker tokens as special tokens, its bos/eos and its chat template."""
    row = reference_index()[name]
    jinja = reference_jinja(name)
    tokenizer = family_tokenizer(sorted(set(_MARKERS.findall(jinja))), row["bos_token"], row["eos_token"])
    tokenizer.chat_template = jinja
    return tokenizer


_CLOCK = re.compile(r"\d{2}:\d{2}:\d{2}")


def _timeless(text: str) -> str:
    """`text` with clock times (hh:mm:ss) blanked: a template that writes the current time to the second (Hunyuan's)
    renders the contexts and the examples at different moments, which may fall in different seconds."""
    return _CLOCK.sub("hh:mm:ss", text)


def _apply_chat_template(tokenizer, template, messages, tools, thinking, generation):
    """transformers' own rendering, messages in the shape the template reads."""
    from lmforge.data.templates.jinja_render import jinja_message

    kwargs = {} if thinking not in ("true", "false") else {"enable_thinking": thinking == "true"}
    return tokenizer.apply_chat_template([jinja_message(m, template.style) for m in messages], tools=tools,
                                         tokenize=False, add_generation_prompt=generation, **kwargs)


@pytest.mark.parametrize("name", _names())
def test_auto_trains_every_answer_in_its_generation_time_context(name):
    tokenizer = auto_tokenizer(name)
    template = resolve_template(None, tokenizer)
    stops = [*template.stop_words]
    trained = 0
    for case_name, case in CASES.items():
        messages = assign_tool_call_ids(case.messages)
        if case.thinking == "false":
            messages = [Message(m.role, split_thought(m.content, "<think>", "</think>")[1], m.tool_calls,
                                m.tool_call_id) if m.role == "assistant" else m for m in messages]
        try:
            _apply_chat_template(tokenizer, template, messages, case.tools, case.thinking, False)
        except Exception:  # the model's own template refuses this conversation (roles, system, tools)
            continue
        try:
            examples = template.examples(case.messages, tools=case.tools, enable_thinking=case.thinking,
                                         bos_token=tokenizer.bos_token or "", eos_token=tokenizer.eos_token or "",
                                         train=True)
        except TemplateError as err:  # refused: the model's own template drops the tool calls or definitions
            assert "chat template does not write" in str(err), case_name
            assert case.tools or any(m.tool_calls for m in messages), case_name
            continue
        answers = [i for i, m in enumerate(messages) if m.role == "assistant"]
        contexts = {_timeless(_apply_chat_template(tokenizer, template, messages[:i], case.tools, case.thinking,
                                                   True)): i for i in answers}
        seen = []
        for segments in examples:
            text = ""
            for segment in segments:
                if segment.supervised:
                    # the context is exactly the template's own generation-time rendering of that turn
                    context = _timeless(text)
                    assert context in contexts, f"{case_name}: the context of a supervised answer is not a prompt"
                    index = contexts[context]
                    seen.append(index)
                    _, content = split_thought(messages[index].content, "<think>", "</think>")
                    assert content.strip() in segment.text or messages[index].tool_calls, case_name
                    assert any(segment.text.rstrip().endswith(stop) for stop in stops), (case_name, segment.text)
                text += segment.text.removesuffix(tokenizer.eos_token) if template.efficient_eos and \
                    segment.supervised else segment.text
        assert sorted(seen) == answers, f"{case_name}: every answer is trained exactly once"
        trained += 1
    assert trained, "the template renders none of the battery's conversations"


@pytest.mark.parametrize("name", _names())
def test_auto_loss_mask_is_exactly_the_answers_and_their_end(name):
    tokenizer = auto_tokenizer(name)
    template = resolve_template(None, tokenizer)
    end_ids = frozenset(stop_token_ids(template, tokenizer))
    rows = []
    for case_name, case in CASES.items():
        try:
            template.examples(case.messages, tools=case.tools, bos_token=tokenizer.bos_token or "",
                              eos_token=tokenizer.eos_token or "")
        except TemplateError:
            continue
        rows.append(Conversation(case.messages, None, case_name, tools=case.tools))
    columns, stats = tokenize_sft(rows, template, tokenizer, cutoff_len=4096, end_ids=end_ids)
    assert stats.rows >= len(rows) and not stats.dropped_empty
    assert stats.answers_without_end == 0, "every supervised answer ends with an end-of-turn token"
    for ids, labels in zip(columns["input_ids"], columns["labels"], strict=True):
        supervised = [token for token, label in zip(ids, labels, strict=True) if label != IGNORE_INDEX]
        assert supervised and all(label in (IGNORE_INDEX, token) for token, label in zip(ids, labels, strict=True))


@pytest.mark.parametrize("name", _names())
def test_auto_prompt_is_apply_chat_template(name):
    tokenizer = auto_tokenizer(name)
    template = resolve_template(None, tokenizer)
    for case in CASES.values():
        prompt = case.prompt_case()
        messages = assign_tool_call_ids(prompt.messages)
        try:
            expected = _apply_chat_template(tokenizer, template, messages, prompt.tools, prompt.thinking, True)
        except Exception:
            continue
        names = [tool["function"]["name"] for tool in normalize_tools(prompt.tools) or []]
        if not all(name in expected for name in names):  # the model's template leaves the tools out: refused
            with pytest.raises(TemplateError, match="does not write tool definitions"):
                encode_conversation(template, tokenizer, prompt.messages, tools=prompt.tools,
                                    enable_thinking=prompt.thinking, add_generation_prompt=True)
            continue
        for _ in range(3):  # a template writing the time to the second (Hunyuan-A13B's) may see the clock tick
            ids = encode_conversation(template, tokenizer, prompt.messages, tools=prompt.tools,
                                      enable_thinking=prompt.thinking, add_generation_prompt=True).flat()
            after = _apply_chat_template(tokenizer, template, messages, prompt.tools, prompt.thinking, True)
            if after == expected:
                break
            expected = after
        assert tokenizer.decode(ids) == expected or ids == tokenizer(expected, add_special_tokens=False)["input_ids"]


def test_enable_thinking_reaches_a_template_that_reads_it():
    tokenizer = auto_tokenizer("qwen3")
    template = resolve_template(None, tokenizer)
    question = [Message("user", "Name a colour.")]
    off = template.render_text(question, add_generation_prompt=True, enable_thinking="false")
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert template.render_text(question, add_generation_prompt=True).endswith("<|im_start|>assistant\n")


def test_qwen3_splits_where_history_drops_thoughts_and_mask_history_keeps_one_example():
    tokenizer = auto_tokenizer("qwen3")
    template = resolve_template(None, tokenizer)
    messages = CASES["thoughts"].messages
    examples = template.examples(messages, train=True)
    assert len(examples) == 2  # the first answer's thought is dropped from the second turn's history
    supervised = [[s.text for s in example if s.supervised] for example in examples]
    assert supervised == [["<think>\nAny colour will do.\n</think>\n\nBlue.<|im_end|>"],
                          ["<think>\nNot blue again.\n</think>\n\nGreen.<|im_end|>"]]
    (last,) = template.examples(messages, train=True, mask_history=True)
    assert [s.text for s in last if s.supervised] == supervised[1]
    assert "Any colour will do." not in "".join(s.text for s in last)  # history as the template writes it


def test_preserve_thinking_keeps_earlier_thoughts_in_one_example():
    messages = CASES["thoughts"].messages
    stitched = resolve_template(None, auto_tokenizer("qwen3")).preserving_thinking()
    (example,) = stitched.examples(messages, train=True)
    text = "".join(s.text for s in example)
    assert "Any colour will do." in text and text.count("<|im_end|>") == 4
    assert next(s.text for s in example if s.supervised).startswith("<think>\nAny colour")
    switched = resolve_template(None, auto_tokenizer("qwen3.6")).preserving_thinking()  # reads preserve_thinking
    assert len(switched.examples(messages, train=True)) == 1


def test_auto_without_an_end_of_turn_appends_eos_to_what_is_trained():
    tokenizer = auto_tokenizer("chatglm3")
    template = resolve_template(None, tokenizer)
    assert template.efficient_eos and template.stop_words == (tokenizer.eos_token,)
    (example,) = template.examples(CASES["single turn"].messages, train=True, eos_token=tokenizer.eos_token)
    assert [s.text for s in example if s.supervised] == [f"\n Hi! How can I help?{tokenizer.eos_token}"]


def test_refdata_is_present():
    refdata("chat_templates", "INDEX.tsv")


@pytest.mark.parametrize("reference, suggested, identical", [("qwen2.5-instruct", "qwen", True),
                                                              ("glm-4.5", "glm4_moe", True),
                                                              ("gemma-4", "gemma4", False),
                                                              ("falcon-instruct", None, False)])
def test_suggestions_are_of_the_same_family_or_none(reference, suggested, identical):
    from lmforge.data.templates.auto import family_advice, family_template

    row = reference_index()[reference]
    assert family_template(reference_jinja(reference), row["bos_token"], row["eos_token"]) == (suggested, identical)
    if suggested is None:  # Gemma 4 used to get `phi` as "the closest" before its family was registered
        assert "none of its family fits" in family_advice(auto_tokenizer(reference))


@pytest.fixture
def own_registrations():
    """Templates a test registers from a file are removed afterwards (other tests list every template)."""
    from lmforge.data.templates.registry import TEMPLATES

    before = set(TEMPLATES.names())
    yield
    for name in set(TEMPLATES.names()) - before:
        TEMPLATES.unregister(name)


def test_a_template_file_registers_without_editing_the_package(tmp_path, own_registrations):
    from lmforge.data.templates.derive import derive_template
    from lmforge.data.templates.select import select_template

    derived = derive_template(reference_jinja("llama-3-instruct"), "my_llama3_file", "<|begin_of_text|>",
                              "<|eot_id|>")
    path = tmp_path / "templates.py"
    path.write_text(derived.registration() + "\n", encoding="utf-8")
    template = select_template("my_llama3_file", None, template_file=str(path))
    assert template.stop_words == ("<|eot_id|>",)
    assert select_template("my_llama3_file", None, template_file=str(path)) is template  # loaded once
    os.utime(path, (1, 1))  # an edited file replaces its own registrations
    assert select_template("my_llama3_file", None, template_file=str(path)) == template
    broken = tmp_path / "broken.py"
    broken.write_text('register_template("ok_one", format_user="{{content}}", format_assistant="{{content}}")\n'
                      'register_template("bad_one", format_user="{{content}}", no_such_slot="x")\n', encoding="utf-8")
    with pytest.raises(TemplateError, match=r"broken.py:2: TypeError: .*no_such_slot"):
        select_template("bad_one", None, template_file=str(broken))
    with pytest.raises(TemplateError, match="no such file"):
        select_template("x", None, template_file=str(tmp_path / "missing.py"))


@pytest.mark.parametrize("reference, tool_format", [("qwen2.5-instruct", "qwen"), ("llama-3.1-instruct", "llama3"),
                                                     ("qwen3", "qwen"), ("gemma-3-it", "default")])
def test_auto_parses_the_calls_its_template_writes(reference, tool_format):
    template = resolve_template(None, auto_tokenizer(reference))
    assert template.tool_format == tool_format
    if tool_format == "default":
        return
    case = CASES["tool call"]
    first = template.examples(case.messages, tools=case.tools, train=True)[0]
    answer = next(s.text for s in first if s.supervised)
    for stop in template.stop_words:  # chat decodes the answer without its end-of-turn
        answer = answer.removesuffix(stop)
    assert template.tools.parse_calls(answer) == list(case.messages[1].tool_calls)


def test_the_mismatch_warning_suggests_the_family_or_none():
    from rich.console import Console

    from lmforge.data.templates import get_template
    from lmforge.train.prepare import cross_check_template

    with pytest.raises(TemplateError, match=r"none of its family fits.*`template: auto` trains with it as it is"):
        cross_check_template(get_template("phi"), auto_tokenizer("falcon-instruct"), True, Console())
    with pytest.raises(TemplateError, match="`template: qwen` renders the tokenizer's chat template identically"):
        cross_check_template(get_template("chatml"), auto_tokenizer("qwen2.5-instruct"), True, Console())
