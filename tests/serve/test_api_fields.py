"""Every chat-completions field the official `openai` client sends: honoured, or refused with a 400 naming it.

One test per field group, through the client against the app on the tiny random model (greedy unless
a test samples), so each answer is deterministic.
"""

import json

import pytest

from lmforge.data.templates.template import Message
from lmforge.infer.structured import structured_available
from tests.serve.openai_app import openai_client, tiny_engine

openai = pytest.importorskip("openai", reason="the openai client is a dev extra (pip install -e '.[dev]')")
MODEL = "tiny-fields"
HELLO = [{"role": "user", "content": "Hello!"}]
SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}, "size": {"enum": ["S", "M", "L"]}},
          "required": ["ok", "size"], "additionalProperties": False}


@pytest.fixture(scope="module")
def engine():
    with tiny_engine(max_new_tokens=12) as engine:
        yield engine


@pytest.fixture(scope="module")
def client(engine):
    with openai_client(engine, MODEL) as client:
        yield client


def ask(client, **fields):
    return client.chat.completions.create(model=MODEL, messages=HELLO, **fields)


def tokens_of(response):
    return [entry.token for entry in response.choices[0].logprobs.content]


def engine_answer(engine, **options):
    [candidate] = engine.candidates([Message("user", "Hello!")], options=engine.options(**options))
    return candidate


def test_logit_bias_and_openai_penalties(client, engine):
    """Each field reaches the engine (the API's text is the engine's with the same option), and does what
    OpenAI says on the token ids (byte tokens of the random model all print as U+FFFD)."""
    the = engine.tokenizer.encode(" the", add_special_tokens=False)[-1]
    plain = engine_answer(engine).token_ids
    repeated = max(plain, key=plain.count)
    assert plain.count(repeated) > 2  # the random model repeats itself
    cases = [  # (API fields, engine options, what the answer's ids must show)
        ({"logit_bias": {str(the): 30}}, {"logit_bias": ((the, 30.0),)}, lambda ids: ids == (the,) * 12),
        # presence: minus 2 for a token already in the answer; frequency: minus 2 per occurrence
        ({"presence_penalty": 2}, {"presence_penalty": 2.0}, lambda ids: ids.count(repeated) == 1),
        ({"frequency_penalty": 2}, {"frequency_penalty": 2.0}, lambda ids: ids.count(repeated) == 1),
        ({"frequency_penalty": -2}, {"frequency_penalty": -2.0}, lambda ids: ids == (plain[0],) * 12),
        ({"logit_bias": {str(the): 5}, "presence_penalty": 2},
         {"logit_bias": ((the, 5.0),), "presence_penalty": 2.0}, lambda ids: ids == (the,) * 12),
        ({"logit_bias": {str(the): 5}, "frequency_penalty": 2},  # 5 - 2 x 3 < 0: no fourth
         {"logit_bias": ((the, 5.0),), "frequency_penalty": 2.0},
         lambda ids: ids.count(the) == 3 == ids[:3].count(the)),
    ]
    for fields, options, holds in cases:
        expected = engine_answer(engine, **options)
        assert holds(expected.token_ids), fields
        assert ask(client, **fields).choices[0].message.content == expected.text, fields
    with pytest.raises(openai.BadRequestError, match=r"logit_bias: token 99999 is not in the vocabulary"):
        ask(client, logit_bias={"99999": 1})
    with pytest.raises(openai.BadRequestError, match="logit_bias keys are token ids"):
        ask(client, logit_bias={"hello": 1})
    with pytest.raises(openai.BadRequestError, match="presence_penalty"):
        ask(client, presence_penalty=3)


def test_logprobs_with_top_alternatives(client, engine):
    response = ask(client, logprobs=True, top_logprobs=3)
    entries = response.choices[0].logprobs.content
    assert len(entries) == response.usage.completion_tokens
    assert "".join(entry.token for entry in entries) == response.choices[0].message.content
    for entry in entries:  # greedy: the chosen token is the likeliest one
        assert len(entry.top_logprobs) == 3
        assert entry.top_logprobs[0].token == entry.token and entry.top_logprobs[0].logprob == entry.logprob
        assert [alt.logprob for alt in entry.top_logprobs] == sorted((a.logprob for a in entry.top_logprobs),
                                                                    reverse=True)
    # the tokens' bytes add up to the answer's (a byte token alone prints as U+FFFD; its bytes are exact)
    assert bytes(b for entry in entries for b in entry.bytes).decode(errors="replace") == \
        response.choices[0].message.content
    assert any(entry.token == "\ufffd" and len(entry.bytes) == 1 for entry in entries)
    [scored] = engine.candidates([Message("user", "Hello!")], options=engine.options(logprobs=0))
    assert [entry.logprob for entry in entries] == pytest.approx(scored.token_logprobs)
    assert ask(client).choices[0].logprobs is None
    with pytest.raises(openai.BadRequestError, match="top_logprobs needs logprobs: true"):
        ask(client, top_logprobs=2)
    with pytest.raises(openai.BadRequestError, match="top_logprobs"):
        ask(client, logprobs=True, top_logprobs=21)


def _valid(answer: dict) -> bool:
    return set(answer) == {"ok", "size"} and isinstance(answer["ok"], bool) and answer["size"] in ("S", "M", "L")


@pytest.mark.skipif(not structured_available(), reason="constrained decoding needs xgrammar: "
                    "pip install -e '.[structured]'")
def test_response_format_json_schema_and_json_object(client):
    schema_format = {"type": "json_schema", "json_schema": {"name": "shirt", "schema": SCHEMA, "strict": True}}
    free = ask(client, max_tokens=40).choices[0].message.content
    with pytest.raises(json.JSONDecodeError):
        json.loads(free)  # unconstrained, the random model writes no JSON
    for seed in range(3):
        response = ask(client, response_format=schema_format, max_tokens=40, temperature=1.0, seed=seed)
        assert response.choices[0].finish_reason == "stop"  # the grammar ends the answer when the JSON is whole
        assert _valid(json.loads(response.choices[0].message.content))
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in ask(
        client, response_format=schema_format, max_tokens=40, n=2, temperature=1.0, seed=7, stream=True)
        if chunk.choices and chunk.choices[0].index == 0)
    assert _valid(json.loads(streamed))
    answer = ask(client, response_format={"type": "json_object"}, max_tokens=40)
    assert isinstance(json.loads(answer.choices[0].message.content), dict)
    assert ask(client, response_format={"type": "text"}, max_tokens=40).choices[0].message.content == free
    with pytest.raises(openai.BadRequestError, match=r"response_format json_schema cannot be used: .*objectx"):
        ask(client, response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {
            "type": "objectx"}}})
    with pytest.raises(openai.BadRequestError, match=r"constrained decoding .* not beam search"):
        ask(client, response_format=schema_format, extra_body={"num_beams": 2})


def test_response_format_json_without_xgrammar_is_refused_naming_the_extra(client, engine, monkeypatch):
    import lmforge.infer.structured

    monkeypatch.setattr(lmforge.infer.structured, "structured_available", lambda: False)  # as if not installed
    monkeypatch.setattr(engine, "_schemas", None)  # (the compiler earlier tests made)
    with pytest.raises(openai.BadRequestError, match=r"response_format` json needs xgrammar .*lmforge\[structured\]"):
        ask(client, response_format={"type": "json_object"})
    assert ask(client, response_format={"type": "text"}).choices[0].message.content


def test_seed_n_user_and_token_limits(client):
    fields = dict(n=3, temperature=1.0, seed=11, user="user-42", max_completion_tokens=5)
    first, again = ask(client, **fields), ask(client, **fields)
    texts = [choice.message.content for choice in first.choices]
    assert texts == [choice.message.content for choice in again.choices]  # the same seed, the same answers
    assert len(set(texts)) > 1  # and still n different samples
    assert texts != [c.message.content for c in ask(client, **{**fields, "seed": 12}).choices]
    assert first.usage.completion_tokens == 15 and {c.finish_reason for c in first.choices} == {"length"}
    assert ask(client, max_tokens=3).usage.completion_tokens == 3


def test_stream_include_usage_sends_usage_last(client):
    whole = ask(client, n=2, temperature=1.0, seed=3)
    chunks = list(ask(client, n=2, temperature=1.0, seed=3, stream=True, stream_options={"include_usage": True},
                      logprobs=True))
    *answer, last = chunks
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (whole.usage.prompt_tokens,
                                                                       whole.usage.completion_tokens)
    assert all(chunk.usage is None for chunk in answer)
    texts = {0: "", 1: ""}
    for chunk in answer:
        texts[chunk.choices[0].index] += chunk.choices[0].delta.content or ""
    assert [texts[0], texts[1]] == [c.message.content for c in whole.choices]
    finishing = [chunk.choices[0] for chunk in answer if chunk.choices[0].finish_reason]
    assert sorted(c.index for c in finishing) == [0, 1]
    assert all("".join(e.token for e in c.logprobs.content) == texts[c.index] for c in finishing)
    assert list(ask(client, stream=True))[-1].usage is None  # only when asked for


def test_fields_that_change_nothing_are_accepted(client):
    plain = ask(client).choices[0].message.content
    assert ask(client, metadata={"team": "a"}, store=False, service_tier="auto", safety_identifier="u1",
               prompt_cache_key="k", modalities=["text"], parallel_tool_calls=True,
               stream_options=None).choices[0].message.content == plain


@pytest.mark.parametrize(("fields", "named"), [
    ({"audio": {"voice": "alloy", "format": "mp3"}, "modalities": ["text", "audio"]}, "`audio`.*`modalities`"),
    ({"functions": [{"name": "f", "parameters": {}}]}, "`functions` cannot be honoured: the deprecated"),
    ({"reasoning_effort": "low"}, "`reasoning_effort` cannot be honoured: .*enable_thinking"),
    ({"prediction": {"type": "content", "content": "x"}}, "`prediction` cannot be honoured"),
    ({"store": True}, "`store` cannot be honoured: lmforge stores no completions"),
    ({"service_tier": "flex"}, "`service_tier` cannot be honoured"),
    ({"verbosity": "low"}, "`verbosity` cannot be honoured"),
    ({"web_search_options": {}}, "`web_search_options` cannot be honoured"),
    ({"stream": True, "stream_options": {"include_obfuscation": True}}, "`include_obfuscation` cannot be"),
])
def test_fields_that_cannot_be_honoured_are_refused_by_name(client, fields, named):
    with pytest.raises(openai.BadRequestError, match=named):
        ask(client, **fields)


def test_an_earlier_answers_reasoning_content_is_its_think_block(client):
    """DeepSeek's API and vLLM's reasoning parsers return an answer's thought as `reasoning_content`, and clients
    send it back in the history: it is the think block in front of that answer, as in lmforge's data."""
    def history(answer):
        return [{"role": "user", "content": "Hi"}, answer, {"role": "user", "content": "And now?"}]

    separate = client.chat.completions.create(model=MODEL, temperature=0, messages=history(
        {"role": "assistant", "content": "Hello.", "reasoning_content": "Greet back."}))
    inline = client.chat.completions.create(model=MODEL, temperature=0, messages=history(
        {"role": "assistant", "content": "<think>\nGreet back.\n</think>\n\nHello."}))
    plain = client.chat.completions.create(model=MODEL, temperature=0, messages=history(
        {"role": "assistant", "content": "Hello."}))
    assert separate.choices[0].message.content == inline.choices[0].message.content
    assert separate.usage.prompt_tokens == inline.usage.prompt_tokens > plain.usage.prompt_tokens  # chatml keeps it
    with pytest.raises(openai.BadRequestError, match=r"messages\[1\] has both `reasoning_content` and a think block"):
        client.chat.completions.create(model=MODEL, messages=history(
            {"role": "assistant", "content": "<think>\nx\n</think>\n\nHello.", "reasoning_content": "Greet back."}))
