"""gpt-oss (Harmony): tool definitions of every schema shape equal gpt-oss's own template, calls parse
back (also as serving decodes them), and the loss mask trains what the model generates."""

import datetime

import pytest

from lmforge.data.conversation import Conversation
from lmforge.data.processors.sft import build_sft_example
from lmforge.data.templates import Message, get_template
from lmforge.data.templates.harmony import parse_calls, render_calls
from lmforge.data.templates.jinja import template_to_jinja
from lmforge.data.templates.messages import ToolCall
from lmforge.errors import TemplateError
from tests.data.template_cases import (
    PARIS,
    TODAY,
    WEATHER_TOOL,
    Case,
    reference_jinja,
    reference_tokens,
    render_ours,
    render_reference,
    tokenizer_for,
)
from tests.data.test_templates import _supervised_spans


def _tool(name: str, properties: dict | None, required: list[str] | None = None) -> dict:
    function = {"name": name, "description": f"The {name} tool."}
    if properties is not None:
        function["parameters"] = {"type": "object", "properties": properties, **({"required": required}
                                                                                  if required else {})}
    return {"type": "function", "function": function}


SCHEMAS = {
    "scalars": _tool("scalars", {
        "text": {"type": "string", "description": "Some text."}, "count": {"type": "integer"},
        "ratio": {"type": "number", "default": 0.5}, "flag": {"type": "boolean", "default": False},
        "name": {"type": "string", "nullable": True, "default": "x"}}, ["text"]),
    "enums and defaults": _tool("enums", {
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
        "level": {"type": "string", "enum": ["low", "high"], "description": "How much."}}, ["level"]),
    "arrays": _tool("arrays", {
        "tags": {"type": "array", "items": {"type": "string"}},
        "sizes": {"type": "array", "items": {"type": "integer"}},
        "ratios": {"type": "array", "items": {"type": "number"}, "nullable": True},
        "flags": {"type": "array", "items": {"type": "boolean"}}, "anything": {"type": "array"},
        "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
        "points": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "number"}}}},
        "records": {"type": "array", "items": {"type": "object", "properties": {
            "identifier": {"type": "string"}, "description": {"type": "string"}, "score": {"type": "number"}},
            "required": ["identifier"]}},
        "unions": {"type": "array", "items": {"type": ["string", "number"]}}}),
    "objects": _tool("objects", {
        "filter": {"type": "object", "description": "A filter.", "properties": {
            "year": {"type": "integer"}, "range": {"type": "object", "properties": {"from": {"type": "string"}},
                                                   "required": ["from"]}}, "required": ["year"]},
        "extra": {"type": "object"}, "free": {"description": "No type."}}, ["filter"]),
    "unions": _tool("unions", {
        "value": {"type": ["string", "null"]}, "single": {"type": ["integer"]},
        "choice": {"oneOf": [{"type": "string", "description": "A name."}, {"type": "integer", "default": 3}],
                   "default": "a"},
        "shape": {"oneOf": [{"type": "object", "properties": {"r": {"type": "number"}}}, {"type": "string"}]}}),
    "no parameters": _tool("ping", None),
    "empty properties": _tool("noop", {}),
}


@pytest.mark.parametrize("name", list(SCHEMAS))
@pytest.mark.parametrize("system", [None, "Be brief."], ids=["no system", "system"])
def test_tool_definitions_equal_the_reference_and_the_saved_jinja(name, system):
    template = get_template("gpt_oss")
    messages = [Message("user", "Hi"), Message("assistant", "Hello.")]
    case = Case(([Message("system", system)] if system else []) + messages, tools=[SCHEMAS[name], WEATHER_TOOL])
    bos, eos = reference_tokens("gpt-oss")
    ours = render_ours(template, case, False, bos, eos)
    assert render_reference(reference_jinja("gpt-oss"), case, False, bos, eos) == ours
    assert render_reference(template_to_jinja(template), case, False, bos, eos) == ours


def test_calls_parse_back_in_every_form_a_model_writes_them():
    calls = (PARIS, ToolCall("search", {"query": "to=functions.other {x}", "limit": 5}))
    rendered = render_calls(calls)
    assert parse_calls(rendered) == list(calls)
    # gpt-oss checkpoints put the recipient after the channel, with a <|constrain|> token
    harmony = '<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city": "Paris"}<|call|>'
    assert parse_calls(harmony) == [ToolCall("get_weather", {"city": "Paris"})]
    # serving decodes answers without special tokens: the channel name is then glued to the function name
    decoded = ('analysisThe user wants the weather.assistant to=functions.get_weathercommentary json'
               '{"city": "Paris", "unit": "celsius"}')
    assert parse_calls(decoded) == [PARIS]
    assert parse_calls('commentary to=functions.get_weather json{"city": "Paris"}') == [
        ToolCall("get_weather", {"city": "Paris"})]
    assert parse_calls("finalIt is sunny.") == []
    with pytest.raises(TemplateError, match="arguments of `get_weather` are not valid JSON"):
        parse_calls(' to=functions.get_weather<|channel|>commentary json<|message|>{"city": Paris}<|call|>')


def test_loss_mask_trains_what_the_model_generates():
    """Calls end in <|call|>, the final answer (with its analysis thought) in <|return|>; an earlier answer's
    <|end|> (Harmony's rewrite of the <|return|> the model generated) and tool results are not trained."""
    template = get_template("gpt_oss")
    tokenizer = tokenizer_for(template, *reference_tokens("gpt-oss"))
    messages = [Message("user", "Name a colour."), Message("assistant", "<think>\nEasy.\n</think>\n\nBlue."),
                Message("user", "Weather in Paris?"), Message("assistant", "", (PARIS,)),
                Message("tool", '{"temperature": 21}'),
                Message("assistant", "<think>\nIt said 21.\n</think>\n\nIt is 21 °C.")]
    input_ids, labels, _ = build_sft_example(Conversation(messages, None, "t", tools=[WEATHER_TOOL]), template,
                                             tokenizer, cutoff_len=4096)
    assert [tokenizer.decode(span) for span in _supervised_spans(input_ids, labels)] == [
        "<|channel|>final<|message|>Blue.",
        ' to=functions.get_weather<|channel|>commentary json<|message|>{"city": "Paris", "unit": "celsius"}<|call|>',
        "<|channel|>analysis<|message|>It said 21.<|end|><|start|>assistant<|channel|>final<|message|>It is 21 °C."
        "<|return|>"]
    text = tokenizer.decode(input_ids)
    assert "<|channel|>final<|message|>Blue.<|end|><|start|>user" in text and "Easy." not in text
    assert '<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>"{\\"temperature\\": 21}"' \
           in text


def test_tool_results_are_named_after_the_call_they_answer():
    template = get_template("gpt_oss")
    calls = (ToolCall("get_weather", {"city": "Paris"}, "a"), ToolCall("get_time", {"city": "Paris"}, "b"))
    messages = [Message("user", "?"), Message("assistant", "", calls),
                Message("tool", "14:05", tool_call_id="b"), Message("tool", "21")]
    text = template.render_text(messages, date=TODAY)
    assert text.index("functions.get_time to=assistant") < text.index("functions.get_weather to=assistant")
    saved = render_reference(template_to_jinja(template), Case(messages), False, "", "")
    assert saved == text
    for orphan in ([Message("user", "?"), Message("assistant", "Hi."), Message("tool", "21")],
                   [*messages, Message("tool", "late")]):
        with pytest.raises(TemplateError, match="follows no unanswered tool call"):
            template.render_text(orphan)
        with pytest.raises(Exception, match="follows no unanswered tool call"):
            render_reference(template_to_jinja(template), Case(orphan), False, "", "")


def test_harmony_system_message_names_the_day():
    text = get_template("gpt_oss").render_text([Message("user", "Hi")], date=datetime.date(2025, 1, 2))
    assert "Knowledge cutoff: 2024-06\nCurrent date: 2025-01-02\n\nReasoning: medium" in text
    today = datetime.date.today().strftime("%Y-%m-%d")
    assert f"Current date: {today}" in get_template("gpt_oss").render_text([Message("user", "Hi")])
