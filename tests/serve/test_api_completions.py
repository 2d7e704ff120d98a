"""`/v1/completions` through the official `openai` client: plain-text prompts, no chat template."""

import pytest

from tests.serve.openai_app import openai_client, tiny_engine

openai = pytest.importorskip("openai", reason="the openai client is a dev extra (pip install -e '.[dev]')")
MODEL = "tiny-text"
TEXT = "The capital of France is"


@pytest.fixture(scope="module")
def engine():
    with tiny_engine(max_new_tokens=10) as engine:
        yield engine


@pytest.fixture(scope="module")
def client(engine):
    with openai_client(engine, MODEL) as client:
        yield client


def complete(client, **fields):
    return client.completions.create(model=MODEL, **{"prompt": TEXT, **fields})


def test_the_prompt_is_continued_without_the_chat_template(client, engine):
    response = complete(client)
    prompt = engine.text_prompt(TEXT)
    assert prompt.ids == engine.tokenizer.encode(TEXT)  # no template: the text's own tokens
    [expected] = engine.complete(prompt, engine.options())
    assert response.object == "text_completion" and response.choices[0].text == expected.text
    assert response.usage.prompt_tokens == len(prompt.ids)
    assert response.usage.completion_tokens == len(expected.token_ids) == 10
    assert response.choices[0].finish_reason == "length"
    assert complete(client, echo=True).choices[0].text == TEXT + expected.text
    ids = complete(client, prompt=prompt.ids)  # token ids as the prompt
    assert ids.choices[0].text == expected.text


def test_n_seed_stop_and_several_prompts(client):
    sampled = complete(client, n=2, temperature=1.0, seed=4)
    assert [c.index for c in sampled.choices] == [0, 1]
    assert [c.text for c in sampled.choices] == [c.text for c in complete(client, n=2, temperature=1.0,
                                                                          seed=4).choices]
    whole = complete(client).choices[0].text
    cut = complete(client, stop=[whole[3:5]]).choices[0]
    assert cut.text == whole[:whole.index(whole[3:5])] and cut.finish_reason == "stop"
    several = complete(client, prompt=[TEXT, "Once upon a time"], n=2, temperature=1.0, seed=1, max_tokens=4)
    assert [c.index for c in several.choices] == [0, 1, 2, 3]  # prompt i's answer j is choice i * n + j
    assert several.choices[0].text != several.choices[2].text


def test_logprobs_give_tokens_alternatives_and_offsets(client):
    choice = complete(client, logprobs=2, echo=True).choices[0]
    logprobs = choice.logprobs
    assert len(logprobs.tokens) == len(logprobs.token_logprobs) == len(logprobs.top_logprobs) == 10
    assert choice.text == TEXT + "".join(logprobs.tokens)
    assert logprobs.text_offset[0] == len(TEXT)
    assert all(b - a == len(token) for a, b, token in zip(logprobs.text_offset, logprobs.text_offset[1:],
                                                           logprobs.tokens, strict=False))
    checked = 0
    for token, value, top in zip(logprobs.tokens, logprobs.token_logprobs, logprobs.top_logprobs, strict=True):
        assert token in top and 1 <= len(top) <= 2
        if len(top) == 2:  # (byte tokens all print as U+FFFD, and OpenAI's shape keys alternatives by text)
            assert max(top.values()) == pytest.approx(value)  # greedy: the chosen token is the likeliest
            checked += 1
    assert checked >= 5
    assert complete(client).choices[0].logprobs is None


def test_streaming_with_usage_adds_up_to_the_same_answer(client):
    whole = complete(client, n=2, temperature=1.0, seed=9, echo=True)
    chunks = list(complete(client, n=2, temperature=1.0, seed=9, echo=True, stream=True,
                           stream_options={"include_usage": True}))
    *answer, last = chunks
    texts = {0: "", 1: ""}
    for chunk in answer:
        texts[chunk.choices[0].index] += chunk.choices[0].text
    assert [texts[0], texts[1]] == [c.text for c in whole.choices]
    assert {c.choices[0].index for c in answer if c.choices[0].finish_reason} == {0, 1}
    assert last.choices == [] and last.usage.completion_tokens == whole.usage.completion_tokens


def test_what_cannot_be_honoured_is_refused_by_name(client):
    with pytest.raises(openai.BadRequestError, match="`suffix` cannot be honoured"):
        complete(client, suffix=" and that is all.")
    with pytest.raises(openai.BadRequestError, match="`best_of` cannot be honoured"):
        complete(client, best_of=3)
    with pytest.raises(openai.BadRequestError, match="logprobs"):
        complete(client, logprobs=6)
    with pytest.raises(openai.BadRequestError, match="token ids outside the vocabulary"):
        complete(client, prompt=[1, 2, 10**6])
    with pytest.raises(openai.BadRequestError, match="is not served here"):
        client.completions.create(model="davinci-002", prompt=TEXT)
