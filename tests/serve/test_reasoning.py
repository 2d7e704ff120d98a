"""`lmforge api --reasoning-content`: a thought apart from the answer, whole and streamed, split wherever the
stream's pieces fall."""

import pytest

from lmforge.serve.reasoning import ReasoningStream, split_reasoning
from tests.infer.test_tools import force
from tests.serve.test_api import Server

WORDS = ("<think>", "</think>")


@pytest.mark.parametrize(("text", "opened", "expected"), [
    ("<think>\nAdd them.\n</think>\n\n4.", False, ("Add them.", "4.")),
    ("Add them.\n</think>\n\n4.", True, ("Add them.", "4.")),  # the prompt opened the thought (DeepSeek-R1)
    ("4.", False, (None, "4.")),  # no thought
    ("<think>\nstill thinking", False, ("still thinking", "")),  # cut off inside the thought
    ("<b>4</b>", False, (None, "<b>4</b>")),  # a tag that only starts like the thought word
])
def test_a_whole_text_splits_into_thought_and_answer(text, opened, expected):
    assert split_reasoning(text, WORDS, opened) == expected


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 100])
def test_a_stream_splits_the_same_wherever_its_pieces_fall(size):
    text = "<think>\nAdd 2 and 2.\n</think>\n\nIt is 4 </think> literally."
    stream = ReasoningStream(WORDS, opened=False)
    thought = answer = ""
    for start in range(0, len(text), size):
        piece_thought, piece_answer = stream.feed(text[start:start + size])
        thought, answer = thought + piece_thought, answer + piece_answer
    rest = stream.finish()
    thought, answer = thought + rest[0], answer + rest[1]
    assert (thought.strip(), answer) == ("Add 2 and 2.", "It is 4 </think> literally.")


def test_the_api_returns_the_thought_apart_whole_and_streamed(monkeypatch):
    openai = pytest.importorskip("openai", reason="the openai client is a dev extra")
    from lmforge.config import build_config
    from lmforge.infer.factory import create_engine
    from lmforge.serve.api import ApiSettings, create_app

    engine = create_engine(build_config({"model_name_or_path": "builtin:tiny-llama", "template": "qwen3",
                                         "do_sample": False, "max_new_tokens": 60}))
    force(monkeypatch, engine, "<think>\nAdd them.\n</think>\n\nIt is 4.")  # the tiny model's answer, token by token
    settings = ApiSettings(model_id="m", max_tokens_limit=64, reasoning_content=True)
    try:
        with Server(create_app(engine, settings)) as running:
            client = openai.OpenAI(base_url=f"http://127.0.0.1:{running.port}/v1", api_key="none", max_retries=0,
                                   timeout=120)
            ask = [{"role": "user", "content": "2+2?"}]
            message = client.chat.completions.create(model="m", messages=ask).choices[0].message
            assert (message.reasoning_content, message.content) == ("Add them.", "It is 4.")
            thought = answer = ""
            for event in client.chat.completions.create(model="m", messages=ask, stream=True):
                delta = event.choices[0].delta
                thought += getattr(delta, "reasoning_content", None) or ""
                answer += delta.content or ""
            assert (thought.strip(), answer) == ("Add them.", "It is 4.")
    finally:
        engine.close()
