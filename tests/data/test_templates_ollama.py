"""Ollama Modelfiles render what lmforge renders, for every template, tool calls and results included.

Each Modelfile's TEMPLATE is executed as Ollama executes it (tests/data/ollama_server.py: SYSTEM, message
collation, Ollama's template structs, then Go's text/template as tests/data/gotemplate.py evaluates it) on
the parity battery (tests/data/template_cases.py): as a prompt (the conversation up to its last answer,
with the generation prompt) and as a conversation that ends with an answer (Ollama continues it: lmforge's
rendering up to the end of that answer's text). Strings must be equal; in tool conversations, equal up to
the formatting of JSON values (Ollama re-serialises tools and arguments: ollama_tools.JSON_LIMITS).
Where a Go toolchain is installed (`make go`), the same checks run through Go's own text/template on Ollama's
data (tests/data/ollama_template.go), compared with lmforge's rendering directly, and the Python evaluator is
checked against Go on every template, case and thinking setting.
"""

import itertools
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from lmforge.data.templates import get_template, list_templates
from lmforge.data.templates.messages import Message, ToolCall
from lmforge.data.templates.modelfile import template_to_modelfile
from lmforge.data.templates.ollama_tools import OLLAMA_TOOL_FORMATS, go_text
from lmforge.errors import TemplateError
from tests.data.gotemplate import Evaluator, GoTemplateError
from tests.data.ollama_server import go_data, ollama_prompt, parse_modelfile, request_messages, template_data
from tests.data.template_cases import CASES, TIME_TOOL, TODAY, relevant_cases

BOS, EOS = "<s>", "</s>"
# (template, case) where the Modelfile's rendering differs from lmforge's, and why; case "*tools*": every tool case
DEVIATIONS = {
    **{(name, "*tools*"): "lmforge trims this template's system prompt (strip_content), the tool definitions it "
                          "ends with included; Ollama cannot trim, so they keep their final blank line"
       for name in ("llama3", "llava_next_llama3")},
}
# cases whose answer-ending form differs (the prompt form is still checked)
CONTINUED_DEVIATIONS = {
    "thinking on": "enable_thinking: true trains an empty think block on answers without one (a training policy); "
                   "Ollama writes the thinking a request carries",
}

CHECKS = [(template, case_name) for template in list_templates() for case_name in relevant_cases(template)]


def canonical_json(text: str) -> str:
    """`text` with every JSON object or list re-written compactly, keys sorted."""
    decoder, out, position = json.JSONDecoder(), [], 0
    while position < len(text):
        if text[position] in "{[":
            try:
                value, end = decoder.raw_decode(text, position)
            except json.JSONDecodeError:
                value = None
            if isinstance(value, dict | list):
                out.append(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
                position = end
                continue
        out.append(text[position])
        position += 1
    return "".join(out)


def _render(template, messages: list[Message], case, generation_prompt: bool) -> str:
    return template.render_text(messages, tools=case.tools, add_generation_prompt=generation_prompt,
                                enable_thinking=case.thinking, bos_token=BOS, eos_token=EOS, date=TODAY)


def _continued(template, messages: list[Message], case) -> str:
    """lmforge's rendering of a conversation ending with an answer, up to the end of that answer's text."""
    segments = template.render(messages, tools=case.tools, enable_thinking=case.thinking, bos_token=BOS,
                               eos_token=EOS, date=TODAY)
    last = max(i for i, segment in enumerate(segments) if segment.supervised)
    after = template.format_assistant.partition("{{content}}")[2].replace("{{eos_token}}", EOS)
    answer = segments[last].text
    return "".join(s.text for s in segments[:last]) + (answer[:len(answer) - len(after)] if after else answer)


def _skip_reason(template, case_name: str) -> str | None:
    if CASES[case_name].kind == "tools" and template.tools.name not in OLLAMA_TOOL_FORMATS:
        return f"the `{template.tools.name}` tool format has no Ollama rendering (the Modelfile says so)"
    return DEVIATIONS.get((template.name, "*tools*" if CASES[case_name].kind == "tools" else case_name))


@dataclass
class Check:
    """One (template, case): the Modelfile, and each conversation sent to Ollama with lmforge's rendering of it."""
    modelfile: str
    conversations: list[tuple[list[Message], str]]
    tools: list[dict] | None
    think: bool | None
    thought_words: tuple[str, str] | None
    compare: Callable[[str], str]


def _check(template, case_name: str) -> Check:
    case = CASES[case_name]
    messages = template.with_call_ids(case.messages)
    modelfile = template_to_modelfile(template, bos_token=BOS, eos_token=EOS, date=TODAY)
    ours = messages
    try:
        _render(template, messages, case, False)
    except TemplateError as refused:  # a system prompt the template has no slot for: Ollama leaves it out
        assert "has no system slot" in str(refused) and "has no system prompt; Ollama's is left out" in modelfile
        ours = [m for m in messages if m.role != "system"]
    conversations = [(messages[:-1], _render(template, ours[:-1], case, True))]
    if case_name not in CONTINUED_DEVIATIONS:
        conversations.append((messages, _continued(template, ours, case)))
    return Check(modelfile, conversations, case.tools, {"false": False, "true": True}.get(case.thinking or ""),
                 template.thought_words, canonical_json if case.kind == "tools" else str)


@pytest.mark.parametrize("template, case_name", CHECKS, ids=[f"{t.name}-{c}" for t, c in CHECKS])
def test_modelfile_renders_what_lmforge_renders(template, case_name):
    reason = _skip_reason(template, case_name)
    if reason:
        pytest.skip(reason)
    check = _check(template, case_name)
    for conversation, expected in check.conversations:
        rendered = ollama_prompt(check.modelfile, conversation, check.tools, thought_words=check.thought_words,
                                 think=check.think)
        assert check.compare(rendered) == check.compare(expected)


def test_the_modelfile_states_what_it_cannot_render():
    qwen = template_to_modelfile(get_template("qwen"))
    assert "{{ json . }}" in qwen and "# tools (`qwen` format): Ollama re-serialises" in qwen
    mistral = template_to_modelfile(get_template("mistral_tekken"), bos_token=BOS, eos_token=EOS)
    assert "call ids are the request's" in mistral
    llama2 = template_to_modelfile(get_template("llama2"), bos_token=BOS, eos_token=EOS)
    assert "# tools: the `llama2` template has no slot for tool results" in llama2
    assert "# content: lmforge trims message text" in llama2
    granite = template_to_modelfile(get_template("granite3"), date=TODAY)
    assert "SYSTEM carries the date this file was written" in granite and "Today's Date: July 26, 2024." in granite
    with pytest.raises(TemplateError, match="--tokenizer"):
        template_to_modelfile(get_template("llama2"))


def test_a_tool_format_without_go_pieces_is_stated(monkeypatch):
    monkeypatch.delitem(OLLAMA_TOOL_FORMATS, "qwen")
    text = template_to_modelfile(get_template("qwen"))
    assert "lmforge has no Ollama rendering of the `qwen` tool format" in text and ".ToolCalls" not in text


ALARM_TOOL = {"type": "function", "function": {"name": "set_alarm", "description": "Set an alarm.", "parameters": {
    "type": "object", "required": ["hours"], "properties": {
        "days": {"type": "array", "items": {"type": "string"}, "description": "Week days."},
        "hours": {"type": "integer", "description": "Hour of the day."}, "loud": {"type": "boolean"}}}}}
ALARM = [Message("user", "Wake me at 7."),
         Message("assistant", "", (ToolCall("set_alarm", {"hours": 7, "loud": True}),)),
         Message("tool", '{"ok": true}')]


def test_seed_oss_modelfile_writes_its_definitions_calls_and_results():
    template = get_template("seed_oss")
    modelfile = template_to_modelfile(template, bos_token=BOS, eos_token=EOS)
    assert "# tools (`seed_oss` format): Ollama re-serialises" in modelfile and "leave out `returns`" in modelfile
    assert '"""' not in parse_modelfile(modelfile)["TEMPLATE"]  # the docstrings' quotes are Go actions there
    prompt = ollama_prompt(modelfile, ALARM, [ALARM_TOOL])
    assert prompt == template.render_text(ALARM, tools=[ALARM_TOOL], add_generation_prompt=True, bos_token=BOS,
                                          eos_token=EOS)
    assert ('def set_alarm(days: list,hours: int,loud: bool):\n    """\n    Set an alarm.\n\n    Args:\n'
            "    - days (list) [选填]: Week days.\n    - hours (int) [必填]: Hour of the day.\n"
            '    - loud (bool) [选填]: \n\n    """') in prompt
    assert ("<seed:tool_call>\n<function=set_alarm>\n<parameter=hours>7</parameter>\n<parameter=loud>True"
            "</parameter>\n</function>\n</seed:tool_call></s><s>tool\n{\"ok\": true}</s><s>assistant\n") in prompt


def test_gemma4_modelfile_writes_its_notation_and_answers_in_the_results_turn():
    template = get_template("gemma4")
    modelfile = template_to_modelfile(template, bos_token=BOS, eos_token=EOS)
    assert "# tools (`gemma4` format): Ollama re-serialises" in modelfile and "`tool_name`" in modelfile
    prompt = ollama_prompt(modelfile, ALARM, [ALARM_TOOL])
    assert prompt == template.render_text(ALARM, tools=[ALARM_TOOL], add_generation_prompt=True, bos_token=BOS,
                                          eos_token=EOS)
    q = '<|"|>'
    assert (f"<|tool>declaration:set_alarm{{description:{q}Set an alarm.{q},parameters:{{properties:{{days:{{"
            f"description:{q}Week days.{q},items:{{type:{q}STRING{q}}},type:{q}ARRAY{q}}},hours:{{description:{q}Hour "
            f"of the day.{q},type:{q}INTEGER{q}}},loud:{{type:{q}BOOLEAN{q}}}}},required:[{q}hours{q}],"
            f"type:{q}OBJECT{q}}}}}<tool|>") in prompt
    # the results follow the call inside the model's turn, named after it, and the answer goes on there (no header)
    assert prompt.endswith(f"<|turn>model\n<|tool_call>call:set_alarm{{hours:7,loud:true}}<tool_call|>"
                           f"<|tool_response>response:set_alarm{{value:{q}{{\"ok\": true}}{q}}}<tool_response|>")


def test_go_text_escapes_action_delimiters():
    for literal in ("a{{b", "{{{", "ends with {", "}}", '{"name": ', 'def f():\n    """doc"""'):
        assert Evaluator(go_text(literal) + "{{ .X }}").render({"X": "x"}) == literal + "x"
        assert '"""' not in go_text(literal)  # the Modelfile quotes the TEMPLATE with three double quotes


@pytest.mark.parametrize("source, expected", [
    ("a  {{- .X -}}  b", "axb"),
    ("{{ with .X }}[{{ . }}]{{ else }}none{{ end }}", "[x]"),
    ('{{ if eq .X "y" }}y{{ else if eq .X "x" "z" }}x{{ else }}other{{ end }}', "x"),
    ("{{ range $k, $v := .M }}{{ $k }}={{ $v }};{{ end }}", "a=1;b=2;"),  # a map ranges in key order
    ("{{ range .E }}x{{ else }}empty{{ end }}", "empty"),
    ("{{ $n := 0 }}{{ range .L }}{{ $n = . }}{{ end }}{{ $n }}", "3"),  # `=` sets the enclosing variable
    ("{{ if and .E (index .E 0) }}{{ end }}ok", "ok"),  # `and` stops at its first empty argument
    ("{{ range $i, $_ := .L }}{{ if $i }},{{ end }}{{ (index $.L $i) }}{{ end }}", "1,2,3"),
    ("{{ json .M }} {{ json .S }}", '{"a":1,"b":2} "\\u003cb\\u003e \\u0026"'),
    ('{{ len (slice .L 1) }} {{ printf "%T %T" .X .L }}', "2 string []interface {}"),
    ('{{/* a comment */}}{{ "{{" }}', "{{"),
])
def test_the_evaluator_follows_go(source, expected):
    data = {"X": "x", "M": {"b": 2, "a": 1}, "E": [], "L": [1, 2, 3], "S": "<b> &"}
    assert Evaluator(source).render(data) == expected


def test_the_evaluator_refuses_what_it_does_not_model():
    with pytest.raises(GoTemplateError, match="not modelled"):
        Evaluator('{{ html "<" }}').render({})
    data = template_data({}, [{"role": "user", "content": "hi"}], None)
    with pytest.raises(GoTemplateError, match="can't evaluate field Nope"):
        Evaluator("{{ range .Messages }}{{ .Nope }}{{ end }}").render(data)
    with pytest.raises(GoTemplateError, match="incompatible types"):
        Evaluator('{{ if eq 1 "1" }}{{ end }}').render(data)


_GO_PROGRAM = Path(__file__).with_name("ollama_template.go")


@pytest.fixture(scope="module")
def go_or_none(tmp_path_factory) -> Callable[[list[dict]], list[str]] | None:
    """Ollama's template data rendered by Go's own text/template (tests/data/ollama_template.go, built once); None
    without a Go toolchain."""
    if shutil.which("go") is None:
        return None
    folder = tmp_path_factory.mktemp("go")
    built = subprocess.run(["go", "build", "-o", str(folder / "render"), str(_GO_PROGRAM)], capture_output=True,
                           text=True, timeout=300, env={**os.environ, "GOCACHE": str(folder / "cache")})
    assert built.returncode == 0, built.stderr

    def render(requests: list[dict]) -> list[str]:
        (folder / "requests.json").write_text(json.dumps(requests), encoding="utf-8")
        result = subprocess.run([str(folder / "render"), str(folder / "requests.json")], capture_output=True,
                                text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    return render


@pytest.fixture(scope="module")
def go_render(go_or_none) -> Callable[[list[dict]], list[str]]:
    if go_or_none is None:
        pytest.skip("no Go toolchain (`make go`, or `apt-get install golang-go`): the Modelfiles are checked with the "
                    "Python evaluator only")
    return go_or_none


def _go_request(modelfile_text: str, conversation: list[Message], tools: list[dict] | None,
                thought_words: tuple[str, str] | None, think: bool | None) -> dict:
    modelfile = parse_modelfile(modelfile_text)
    return {"template": modelfile["TEMPLATE"],
            **go_data(modelfile, request_messages(conversation, thought_words), tools, think)}


def test_go_renders_what_lmforge_renders(go_render):
    """Every template's Modelfile, executed by Go's text/template on Ollama's data, renders lmforge's text for
    every case of the battery (as a prompt and ending with an answer), with the skips and deviations above."""
    requests, expected, names = [], [], []
    for template, case_name in CHECKS:
        if _skip_reason(template, case_name):
            continue
        check = _check(template, case_name)
        for conversation, text in check.conversations:
            requests.append(_go_request(check.modelfile, conversation, check.tools, check.thought_words, check.think))
            expected.append(check.compare(text))
            names.append((template.name, case_name, len(conversation), check.compare))
    rendered = go_render(requests)
    mismatches = [f"{name} {case} ({length} messages)" for (name, case, length, compare), go, ours
                  in zip(names, rendered, expected, strict=True) if compare(go) != ours]
    assert mismatches == []
    assert len({name for name, *_ in names}) == len(list_templates())  # every template has a Modelfile


def test_evaluator_agrees_with_go(go_render):
    """Go's own text/template, on Ollama's template structs, renders every Modelfile as the Python evaluator does
    (every template, every case, as a prompt and ending with an answer, thinking unset, off and on)."""
    requests, expected = [], []
    for template in list_templates():
        modelfile_text = template_to_modelfile(template, bos_token=BOS, eos_token=EOS, date=TODAY)
        for case_name in relevant_cases(template):
            case = CASES[case_name]
            messages = template.with_call_ids(case.messages)
            for conversation, think in itertools.product((messages, messages[:-1]), (None, False, True)):
                requests.append(_go_request(modelfile_text, conversation, case.tools, template.thought_words, think))
                expected.append(ollama_prompt(modelfile_text, conversation, case.tools,
                                              thought_words=template.thought_words, think=think))
    rendered = go_render(requests)
    assert len(rendered) == len(expected) > 2000
    assert [i for i, (go, ours) in enumerate(zip(rendered, expected, strict=True)) if go != ours] == []


NESTED_TOOL = {"type": "function", "function": {"name": "book", "description": "Book a <room>.", "parameters": {
    "type": "object", "required": ["room"], "properties": {
        "room": {"type": "object", "required": ["floor"], "properties": {
            "wing": {"type": ["string", "null"]}, "floor": {"type": "integer"}}},
        "guests": {"type": "array", "items": {"type": "string"}}}}}}


def test_ollama_data_as_go_sees_it(go_render):
    """Ollama's data, in Go and in the Python evaluator alike: a tool's parameters in key order, a nested object's
    properties in the request's order with its `required`, calls' arguments printed as JSON, `{}` without any."""
    source = ("{{ range .Tools }}{{ json . }} {{ . }}{{ end }}|{{ range .Messages }}{{ range .ToolCalls }}"
              "{{ .Function.Index }} {{ .Function.Arguments }};{{ end }}{{ end }}")
    messages = [Message("user", "Book it."), Message("assistant", "", (ToolCall("book", {"room": {"floor": 2}}),
                                                                      ToolCall("book", {})))]
    data = go_data({}, request_messages(messages, None), [NESTED_TOOL])
    go = go_render([{"template": source, **data}])[0]
    tool = ('{"type":"function","function":{"name":"book","description":"Book a \\u003croom\\u003e.","parameters":'
            '{"type":"object","required":["room"],"properties":{"guests":{"type":"array","items":{"type":"string"}},'
            '"room":{"type":"object","properties":{"wing":{"type":["string","null"]},"floor":{"type":"integer"}},'
            '"required":["floor"]}}}}}')
    assert go == f'{tool} {tool}|0 {{"room":{{"floor":2}}}};0 {{}};'
    assert Evaluator(source).render(template_data({}, request_messages(messages, None), [NESTED_TOOL])) == go


def _ollama_and_go(go, modelfile: str, messages: list[Message], tools: list[dict], thought_words=None) -> str:
    """The prompt as the Python evaluator renders it, required equal to Go's where Go is installed."""
    prompt = ollama_prompt(modelfile, messages, tools, thought_words=thought_words)
    if go is not None:
        assert go([_go_request(modelfile, messages, tools, thought_words, None)]) == [prompt]
    return prompt


VALUES = ToolCall("set_alarm", {"a_flag": True, "b_days": ["mon", 2], "c_none": None, "d_hours": 7.5, "e_note": "ok"})


@pytest.mark.parametrize("name", ["deepseek3", "deepseek3.1", "gpt_oss", "kimi_k2", "olmo3", "qwen3_5", "qwen3_coder"])
def test_call_arguments_of_every_kind_render_as_lmforge_writes_them(name, go_or_none):
    """Strings, booleans, null, numbers and lists in a call's arguments (keys in alphabetical order, as Ollama gives
    them): Python's True / None where the format writes them (Qwen3-Coder), JSON elsewhere."""
    template = get_template(name)
    messages = template.with_call_ids([Message("user", "Wake me."), Message("assistant", "", (VALUES,)),
                                       Message("tool", "done")])
    modelfile = template_to_modelfile(template, bos_token=BOS, eos_token=EOS, date=TODAY)
    prompt = _ollama_and_go(go_or_none, modelfile, messages, [ALARM_TOOL], template.thought_words)
    expected = template.render_text(messages, tools=[ALARM_TOOL], add_generation_prompt=True, bos_token=BOS,
                                    eos_token=EOS, date=TODAY)
    assert canonical_json(prompt) == canonical_json(expected)


HARMONY_TOOL = {"type": "function", "function": {"name": "plan", "description": "Plan a trip.", "parameters": {
    "type": "object", "required": ["city", "days"], "properties": {  # in alphabetical order, as Ollama gives them
        "any": {"description": "Anything."}, "budget": {"type": ["number", "null"]},
        "city": {"type": "string", "description": "Where to."}, "days": {"type": "integer"},
        "extra": {"type": "object"}, "flags": {"type": "array"}, "mode": {"type": "string", "enum": ["train", "plane"]},
        "rooms": {"type": "array", "items": {"type": "object"}},
        "stops": {"type": "array", "items": {"type": "string"}}}}}}


def test_gpt_oss_modelfile_types_parameters_as_harmony_does(go_or_none):
    template = get_template("gpt_oss")
    modelfile = template_to_modelfile(template, date=TODAY)
    messages = [Message("user", "Plan it.")]
    prompt = _ollama_and_go(go_or_none, modelfile, messages, [HARMONY_TOOL, TIME_TOOL])
    assert prompt == template.render_text(messages, tools=[HARMONY_TOOL, TIME_TOOL], add_generation_prompt=True,
                                          date=TODAY)
    assert ("type plan = (_: {\n// Anything.\nany?: any,\nbudget?: number | null,\n// Where to.\ncity: string,\n"
            'days: number,\nextra?: object,\nflags?: any[],\nmode?: "train" | "plane",\nrooms?: object[],\n'
            "stops?: string[],\n}) => any;") in prompt
    # what Ollama does not carry (`nullable`, `default`, `oneOf`) or Go cannot recurse into is stated
    assert "Go cannot recurse into: an object's properties" in modelfile
    nested = {"type": "function", "function": {"name": "f", "description": "", "parameters": {
        "type": "object", "properties": {"o": {"type": "object", "properties": {"x": {"type": "number"}}}}}}}
    assert "o?: object," in _ollama_and_go(go_or_none, modelfile, messages, [nested])
