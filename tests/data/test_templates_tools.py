"""Tool formats render calls and parse them back; tool datasets fail with file and row on bad JSON."""

import json
from dataclasses import replace

import pytest

from lmforge.data.loading import load_conversations
from lmforge.data.registry import resolve_dataset
from lmforge.data.templates.messages import Message, ToolCall, assign_tool_call_ids
from lmforge.data.templates.registry import get_template
from lmforge.data.templates.tool_formats import TOOL_FORMATS, get_tool_format
from lmforge.errors import DataError, TemplateError
from tests.data.template_cases import (
    CASES,
    PARIS,
    TIME_TOOL,
    WEATHER_TOOL,
    reference_jinja,
    reference_tokens,
    render_ours,
    render_reference,
)

CALLS = {
    "one call": (ToolCall("get_weather", {"city": "Paris", "unit": "celsius"}),),
    "two calls": (ToolCall("get_weather", {"city": "Zürich"}), ToolCall("get_time", {"city": "Paris"})),
    "nested arguments": (ToolCall("search", {"query": "a \"quoted\" text", "filters": {"year": [2023, 2024]},
                                             "limit": 5, "exact": True}),),
}


@pytest.mark.parametrize("name", sorted(TOOL_FORMATS))
@pytest.mark.parametrize("case", list(CALLS))
def test_rendered_calls_parse_back(name, case):
    fmt = get_tool_format(name)
    calls = CALLS[case]
    assert fmt.parse_calls(fmt.render_calls(calls)) == list(calls)
    assert fmt.parse_calls("Just a plain answer.") == []


@pytest.mark.parametrize("name", sorted(name for name, fmt in TOOL_FORMATS.items() if fmt.call_ids))
def test_calls_with_ids_parse_back(name):
    fmt = get_tool_format(name)
    [message] = assign_tool_call_ids([Message("assistant", "", CALLS["two calls"])], fmt.call_ids)
    assert all(call.id for call in message.tool_calls)
    assert fmt.parse_calls(fmt.render_calls(message.tool_calls)) == list(message.tool_calls)


def test_tool_call_ids():
    calls = (PARIS, ToolCall("get_time", {"city": "Paris"}))
    messages = [Message("user", "?"), Message("assistant", "", calls), Message("tool", "a"), Message("tool", "b")]
    mistral = assign_tool_call_ids(messages)
    ids = [call.id for call in mistral[1].tool_calls]
    assert all(len(i) == 9 and i.isalnum() for i in ids) and ids[0] != ids[1]
    assert [m.tool_call_id for m in mistral[2:]] == ids  # results answer the calls in order
    assert assign_tool_call_ids(messages) == mistral  # deterministic: preprocessing is reproducible
    numbered = assign_tool_call_ids(messages, "index")
    assert [c.id for c in numbered[1].tool_calls] == ["0", "1"] and numbered[3].tool_call_id == "1"
    kept = assign_tool_call_ids([Message("assistant", "", (ToolCall("f", {}, "abcdefghi"),)),
                                 Message("tool", "x")])
    assert kept[0].tool_calls[0].id == "abcdefghi" and kept[1].tool_call_id == "abcdefghi"


@pytest.mark.parametrize("name", sorted(TOOL_FORMATS))
def test_tool_definitions_name_every_tool(name):
    text = get_tool_format(name).render_tools([WEATHER_TOOL, TIME_TOOL])
    assert "get_weather" in text and "get_time" in text


def test_known_renderings():
    calls = (ToolCall("tool_name", {"foo": "bar", "size": 10}),)
    assert get_tool_format("qwen").render_calls(calls) == (
        '<tool_call>\n{"name": "tool_name", "arguments": {"foo": "bar", "size": 10}}\n</tool_call>')
    arguments = '{"foo": "bar", "size": 10}'
    assert get_tool_format("default").render_calls(calls) == f"Action: tool_name\nAction Input: {arguments}"
    assert get_tool_format("llama3").render_calls(calls) == f'{{"name": "tool_name", "parameters": {arguments}}}'
    assert get_tool_format("glm4").render_calls(calls) == 'tool_name\n{"foo": "bar", "size": 10}'
    assert get_tool_format("mistral").render_calls(calls) == (
        '[TOOL_CALLS] [{"name": "tool_name", "arguments": {"foo": "bar", "size": 10}}]')
    with_id = (ToolCall("tool_name", {"foo": "bar", "size": 10}, "a1B2c3D4e"),)
    assert get_tool_format("mistral_v7").render_calls(with_id) == (
        '[TOOL_CALLS][{"name": "tool_name", "arguments": {"foo": "bar", "size": 10}, "id": "a1B2c3D4e"}]')
    assert get_tool_format("mistral_small").render_calls(with_id) == (
        f"[TOOL_CALLS]tool_name[CALL_ID]a1B2c3D4e[ARGS]{arguments}")
    assert get_tool_format("llama4").join("Checking.", get_tool_format("llama4").render_calls(calls * 2)) == (
        f'<|python_start|>Checking.<|python_end|>{{"name": "tool_name", "parameters": {arguments}}}'
        f'{{"name": "tool_name", "parameters": {arguments}}}')
    assert get_tool_format("internlm2").render_calls(calls) == (
        f'<|action_start|><|plugin|>\n{{"name": "tool_name", "arguments": {arguments}}}<|action_end|>')
    assert get_tool_format("deepseek3").render_calls(calls * 2) == (
        "<｜tool▁calls▁begin｜>"
        f"<｜tool▁call▁begin｜>function<｜tool▁sep｜>tool_name\n```json\n{arguments}\n```<｜tool▁call▁end｜>\n"
        f"<｜tool▁call▁begin｜>function<｜tool▁sep｜>tool_name\n```json\n{arguments}\n```<｜tool▁call▁end｜>"
        "<｜tool▁calls▁end｜>")
    assert get_tool_format("deepseek3.1").render_calls(calls * 2) == (
        f"<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>tool_name<｜tool▁sep｜>{arguments}<｜tool▁call▁end｜>"
        f"<｜tool▁call▁begin｜>tool_name<｜tool▁sep｜>{arguments}<｜tool▁call▁end｜><｜tool▁calls▁end｜>")
    assert get_tool_format("olmo3").render_calls(calls * 2) == (
        "<function_calls>\ntool_name(foo='bar', size=10)\ntool_name(foo='bar', size=10)\n</function_calls>")


def test_pythonic_calls_escape_what_would_not_parse_back():
    fmt = get_tool_format("olmo3")
    call = ToolCall("note", {"text": "it's a \\ path\nand a line", "tags": ["a'b"], "ratio": -0.5, "none": None,
                             "flags": {"on": True, "off": False}})
    rendered = fmt.render_calls((call,))
    assert rendered == ("<function_calls>\nnote(text='it\\'s a \\\\ path\\nand a line', tags=[\"a'b\"], ratio=-0.5, "
                        'none=null, flags={"on": true, "off": false})\n</function_calls>')
    assert fmt.parse_calls(rendered) == [call]
    # tool names Python could not call (`-`, `.`), and text that looks like a call inside a string
    odd = (ToolCall("get-weather", {"city": "x(y", "note": "a\nget(b=1)"}), ToolCall("ns.tool_2", {}))
    assert fmt.parse_calls(fmt.render_calls(odd)) == list(odd)
    # Python's own spellings parse too, and a block cut off before its closing tag (a special token dropped)
    assert fmt.parse_calls("<function_calls>\nf(a=True, b=None, c=(1, 2))") == [ToolCall("f", {"a": True, "b": None,
                                                                                               "c": [1, 2]})]
    with pytest.raises(TemplateError, match=r"`name\(key=value, \.\.\.\)` call per line, got \"f\('positional'\)\""):
        fmt.parse_calls("<function_calls>\nf('positional')\n</function_calls>")
    with pytest.raises(TemplateError, match="not a literal value"):
        fmt.parse_calls("<function_calls>\nf(a=open('x'))\n</function_calls>")
    with pytest.raises(TemplateError, match="not pythonic calls"):
        fmt.parse_calls("<function_calls>\nf(a=\n</function_calls>")


def test_deepseek_call_arguments_must_be_a_json_object():
    with pytest.raises(TemplateError, match="arguments of `f` is not valid JSON"):
        get_tool_format("deepseek3.1").parse_calls("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>f<｜tool▁sep｜>{oops}"
                                                   "<｜tool▁call▁end｜><｜tool▁calls▁end｜>")
    with pytest.raises(TemplateError, match="arguments must be a JSON object"):
        get_tool_format("deepseek3").parse_calls("<｜tool▁call▁begin｜>function<｜tool▁sep｜>f\n```json\n[1]\n```")


def test_malformed_model_output_is_a_clear_error():
    with pytest.raises(TemplateError, match="<tool_call> block is not valid JSON"):
        get_tool_format("qwen").parse_calls('<tool_call>\n{"name": "x", "arguments": {oops}\n</tool_call>')


def _write(tmp_path, conversations, tools):
    rows = [{"conversations": conversations, "tools": tools}]
    (tmp_path / "calls.json").write_text(json.dumps(rows))
    (tmp_path / "dataset_info.json").write_text(json.dumps({"calls": {
        "file_name": "calls.json", "formatting": "sharegpt",
        "columns": {"messages": "conversations", "tools": "tools"}}}))
    return load_conversations(resolve_dataset("calls", tmp_path), max_samples=None, on_bad_row="error")


def test_malformed_tool_json_names_file_and_row(tmp_path):
    good_tools = json.dumps([WEATHER_TOOL["function"]])
    call = {"from": "function_call", "value": '{"name": "get_weather", "arguments": {"city": "Paris"'}
    turns = [{"from": "human", "value": "Weather?"}, call, {"from": "observation", "value": "{}"},
             {"from": "gpt", "value": "Sunny."}]
    with pytest.raises(DataError, match=r"calls.json:row 1: message 2 \(a function call\) is not valid JSON"):
        _write(tmp_path, turns, good_tools)
    call["value"] = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
    with pytest.raises(DataError, match=r"calls.json:row 1: `tools` is not valid JSON"):
        _write(tmp_path, turns, "[{'name': 'get_weather'}]")
    loaded = _write(tmp_path, turns, good_tools)
    conversation = loaded.conversations[0]
    assert conversation.messages[1].tool_calls == (ToolCall("get_weather", {"city": "Paris"}),)
    assert conversation.tools == [WEATHER_TOOL]


def test_a_format_registers_under_its_name_and_aliases():
    from lmforge.data.templates.tool_formats import register_tool_format

    fmt = replace(get_tool_format("qwen"), name="qwen_for_test")
    register_tool_format(fmt, aliases=("qwen_alias_for_test",))
    try:
        assert get_tool_format("qwen_alias_for_test") is fmt and "qwen_for_test" in TOOL_FORMATS
        assert get_tool_format("hermes") is get_tool_format("qwen")
        with pytest.raises(TemplateError, match="tool_format `qwen_for_test` is registered twice"):
            register_tool_format(fmt)
    finally:
        TOOL_FORMATS.unregister("qwen_for_test")
    assert "qwen_alias_for_test" not in TOOL_FORMATS
    with pytest.raises(TemplateError, match=r"unknown tool_format `qwn`; did you mean `qwen`"):
        get_tool_format("qwn")


@pytest.mark.parametrize("case_name", [name for name, case in CASES.items() if case.kind != "thinking"])
@pytest.mark.parametrize("generation_prompt", [False, True])
def test_kimi_k2_renders_as_kimi_k2_thinking_without_its_empty_think_blocks(case_name, generation_prompt):
    """Kimi-K2 Instruct's own template is not in refdata; Kimi-K2-Thinking's writes the same turns, tool
    declarations, `functions.NAME:INDEX` calls and results, plus `<think></think>` in every answer."""
    template = get_template("kimi_k2")
    case = CASES[case_name].prompt_case() if generation_prompt else CASES[case_name]
    case = replace(case, messages=template.with_call_ids(case.messages))
    bos, eos = reference_tokens("kimi-k2-thinking")
    expected = render_reference(reference_jinja("kimi-k2-thinking"), case, generation_prompt, bos, eos)
    assert render_ours(template, case, generation_prompt, bos, eos) == expected.replace("<think></think>", "")


def test_seed_oss_calls_write_values_as_its_template_and_parse_back():
    """Non-string values as jinja's `string` filter writes them (Python's spelling), read back as Python literals."""
    fmt = get_tool_format("seed_oss")
    call = ToolCall("f", {"city": "Paris", "n": 2, "ok": True, "none": None, "filters": {"year": [2024]}})
    text = fmt.render_calls((call,))
    assert text == ("<seed:tool_call>\n<function=f>\n<parameter=city>Paris</parameter>\n<parameter=n>2</parameter>\n"
                    "<parameter=ok>True</parameter>\n<parameter=none>None</parameter>\n"
                    "<parameter=filters>{'year': [2024]}</parameter>\n</function>\n</seed:tool_call>")
    assert fmt.parse_calls(f"Let me check.\n\n{text}") == [call]


GEMMA4_TOOL_SHAPES = {
    "nested object, array, nullable": {"name": "book", "description": "Book a trip.", "parameters": {
        "type": "object", "required": ["where"], "properties": {
            "where": {"type": "object", "description": "Place.", "required": ["city"],
                      "properties": {"city": {"type": "string"}, "zip": {"type": "integer", "nullable": True}}},
            "dates": {"type": "array", "items": {"type": "string", "description": "A day."}},
            "kind": {"type": "string", "enum": ["air", "rail"]}}}},
    "no parameters": {"name": "ping", "description": "Ping."},
}


@pytest.mark.parametrize("shape", GEMMA4_TOOL_SHAPES)
def test_gemma4_definitions_equal_its_template_on_schema_shapes(shape):
    """Gemma 4 writes JSON schemas in its own notation (sorted keys, upper-cased types, `<|"|>` strings)."""
    from tests.data.template_cases import Case

    case = Case([Message("user", "Hi")], tools=[{"type": "function", "function": GEMMA4_TOOL_SHAPES[shape]}])
    bos, eos = reference_tokens("gemma-4")
    assert render_ours(get_template("gemma4"), case, True, bos, eos) == render_reference(
        reference_jinja("gemma-4"), case, True, bos, eos)


def test_gemma4_calls_are_read_back_from_its_notation():
    fmt = get_tool_format("gemma4")
    written = '<|tool_call>call:f{a:<|"|>x, y<|"|>,b:[1,2.5,true,null],c:{d:<|"|>e<|"|>}}<tool_call|>'
    assert fmt.parse_calls("Sure." + written) == [ToolCall("f", {"a": "x, y", "b": [1, 2.5, True, None],
                                                                 "c": {"d": "e"}})]
    assert fmt.render_calls(tuple(fmt.parse_calls(written))) == written
    for malformed in ("<|tool_call>call:f{a:[1}<tool_call|>", "<|tool_call>call:f{a<tool_call|>",
                      '<|tool_call>call:f{a:<|"|>open}<tool_call|>'):
        with pytest.raises(TemplateError, match="Gemma 4 tool call"):
            fmt.parse_calls(malformed)
