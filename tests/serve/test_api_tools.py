"""Tool calling through the API with the official `openai` client: requests, prompts, calls, streaming.

The tiny model's answer is forced token by token (a real `LogitsProcessor` in transformers' own
`generate`, see tests/infer/test_tools.py), so the parsed tool calls are known.
"""

import json

import pytest

from lmforge.config import build_config
from lmforge.data.templates.template import Message, ToolCall
from lmforge.infer.factory import create_engine
from lmforge.serve.api import ApiSettings, create_app
from tests.infer.test_tools import WEATHER, force
from tests.serve.test_api import Server

openai = pytest.importorskip("openai", reason="the openai client is a dev extra (pip install -e '.[dev]')")
MODEL = "tiny-tools"
ASK = [{"role": "user", "content": "Weather in Paris?"}]
CALL = ToolCall("get_weather", {"city": "Paris"})


@pytest.fixture(scope="module")
def engine():
    cfg = build_config({"model_name_or_path": "builtin:tiny-llama", "template": "qwen", "do_sample": False,
                        "max_new_tokens": 100})
    engine = create_engine(cfg)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def client(engine):
    with Server(create_app(engine, ApiSettings(model_id=MODEL, max_tokens_limit=128))) as running:
        yield openai.OpenAI(base_url=f"http://127.0.0.1:{running.port}/v1", api_key="none", max_retries=0,
                            timeout=120)


@pytest.fixture
def forced_call(engine, monkeypatch):
    answer = "Checking.\n" + engine.template.tools.render_calls((CALL,))
    force(monkeypatch, engine, answer)
    return answer


def test_tool_call_response_has_openai_shape(client, forced_call):
    response = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER])
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking."
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}


def test_tool_call_streams_as_delta_tool_calls(client, forced_call):
    chunks = list(client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], stream=True))
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    calls = [call for c in chunks for call in c.choices[0].delta.tool_calls or []]
    assert content == "Checking."
    assert [(call.index, call.function.name, json.loads(call.function.arguments)) for call in calls] == [
        (0, "get_weather", {"city": "Paris"})]
    assert calls[0].id.startswith("call_") and calls[0].type == "function"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tool_choice_none_answers_in_text(client, forced_call):
    response = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], tool_choice="none")
    assert response.choices[0].message.content == forced_call and response.choices[0].finish_reason == "stop"
    assert not response.choices[0].message.tool_calls


def test_the_prompt_carries_tools_calls_and_results_in_the_templates_format(client, engine):
    history = [*ASK, {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
               {"role": "tool", "tool_call_id": "call_1", "content": '{"temperature": 21}'}]
    response = client.chat.completions.create(model=MODEL, messages=history, tools=[WEATHER], max_tokens=4)
    expected = engine.encode([Message("user", "Weather in Paris?"), Message("assistant", "", (CALL,)),
                              Message("tool", '{"temperature": 21}')], tools=[WEATHER])
    assert response.usage.prompt_tokens == len(expected)
    text = engine.tokenizer.decode(expected)
    assert '<tools>\n{"type": "function", "function": {"name": "get_weather"' in text
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>' in text
    assert "<tool_response>\n" + '{"temperature": 21}' in text


def test_bad_tool_requests_are_refused_clearly(client):
    with pytest.raises(openai.BadRequestError, match="cannot be honoured"):
        client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], tool_choice="required")
    forced = {"type": "function", "function": {"name": "get_weather"}}
    with pytest.raises(openai.BadRequestError, match="cannot be honoured"):
        client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], tool_choice=forced)
    with pytest.raises(openai.BadRequestError, match="non-empty string"):
        client.chat.completions.create(model=MODEL, messages=ASK, tools=[{"type": "function", "function": {}}])
    bad_call = [*ASK, {"role": "assistant", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": "{oops"}}]},
                {"role": "tool", "tool_call_id": "c", "content": "x"}]
    with pytest.raises(openai.BadRequestError, match="arguments are not JSON"):
        client.chat.completions.create(model=MODEL, messages=bad_call, tools=[WEATHER])


def test_parallel_tool_calls_false_keeps_the_first_call(client, engine, monkeypatch):
    second = ToolCall("get_weather", {"city": "Oslo"})
    force(monkeypatch, engine, engine.template.tools.render_calls((CALL, second)))
    both = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], max_tokens=128)
    assert [json.loads(c.function.arguments)["city"] for c in both.choices[0].message.tool_calls] == ["Paris", "Oslo"]
    one = client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], parallel_tool_calls=False,
                                         max_tokens=128)
    assert [json.loads(c.function.arguments)["city"] for c in one.choices[0].message.tool_calls] == ["Paris"]
    streamed = [call for chunk in client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER],
                                                                 parallel_tool_calls=False, stream=True, max_tokens=128)
                for call in chunk.choices[0].delta.tool_calls or []]
    assert [json.loads(c.function.arguments)["city"] for c in streamed] == ["Paris"]


def test_call_ids_reach_the_template_that_writes_them():
    """A result names its call by `tool_call_id`; templates that write ids (Mistral's, 9 characters) or resolve a
    result's function by it get the client's ids, the same on the call and on its result."""
    from lmforge.data.templates import get_template
    from lmforge.serve.chat import _prompt
    from lmforge.serve.protocol import ChatCompletionRequest

    class Recorder:  # stands in for the engine: what the request becomes
        def prompt(self, turns, system, **_):
            self.turns = turns

    history = [*ASK, {"role": "assistant", "content": None, "tool_calls": [
                   {"id": f"call_{n}", "type": "function",
                    "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}}
                   for n, city in ((1, "Paris"), (2, "Rome"))]},
               {"role": "tool", "tool_call_id": "call_2", "content": "25"},
               {"role": "tool", "tool_call_id": "call_1", "content": "21"}]
    recorder = Recorder()
    _prompt(ChatCompletionRequest(model=MODEL, messages=history), recorder, ApiSettings(model_id=MODEL))
    _, calls, first, second = recorder.turns
    assert [call.id for call in calls.tool_calls] == ["call_1", "call_2"]
    assert (first.tool_call_id, second.tool_call_id) == ("call_2", "call_1")
    text = get_template("mistral_v3").render_text(recorder.turns, bos_token="<s>", eos_token="</s>")
    named = text.split("[TOOL_RESULTS]")[1]  # the first result answers the second call (Rome's)
    rome_id = text.split('"Rome"}, "id": "')[1][:9]
    assert len(rome_id) == 9 and rome_id.isalnum() and rome_id in named
