"""Images through the API with the official `openai` client, on tiny vision-language models."""

import base64

import pytest

from lmforge.config import build_config
from lmforge.data.templates.template import Message
from lmforge.infer.factory import create_engine
from lmforge.serve.api import ApiSettings, create_app
from tests.infer.test_images import png
from tests.serve.test_api import Server

openai = pytest.importorskip("openai", reason="the openai client is a dev extra (pip install -e '.[dev]')")
MODEL = "tiny-vlm"


@pytest.fixture(scope="module", params=["qwen2_vl", "llava"])
def served(request, tmp_path_factory):
    from lmforge.testing.tiny_vlm import build_tiny_vlm

    folder = build_tiny_vlm(tmp_path_factory.mktemp(request.param), request.param)
    engine = create_engine(build_config({"model_name_or_path": str(folder), "template": request.param,
                                         "do_sample": False, "max_new_tokens": 6}))
    with Server(create_app(engine, ApiSettings(model_id=MODEL, max_tokens_limit=32))) as running:
        yield engine, openai.OpenAI(base_url=f"http://127.0.0.1:{running.port}/v1", api_key="none", max_retries=0,
                                    timeout=120)
    engine.close()


def data_url(image: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(image).decode()


def ask_about(image: bytes) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(image)}},
                                         {"type": "text", "text": "What is this?"}]}]


def test_data_url_image_is_answered_like_the_engine_does(served):
    engine, client = served
    response = client.chat.completions.create(model=MODEL, messages=ask_about(png()))
    choice = response.choices[0]
    assert choice.finish_reason in ("stop", "length") and isinstance(choice.message.content, str)
    assert choice.message.content == engine.chat([Message("user", "<image>What is this?")], images=[png()])
    assert response.usage.prompt_tokens == len(engine.encode([Message("user", "<image>What is this?")],
                                                             images=[png()]))


def test_streamed_image_answer_adds_up(served):
    _, client = served
    whole = client.chat.completions.create(model=MODEL, messages=ask_about(png())).choices[0].message.content
    chunks = list(client.chat.completions.create(model=MODEL, messages=ask_about(png()), stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole


def test_images_outside_user_messages_and_remote_urls_are_refused(served):
    _, client = served
    with pytest.raises(openai.BadRequestError, match="fetching remote images is off"):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "http://example.com/cat.png"}}]}])
    assistant_image = [{"role": "assistant", "content": [
        {"type": "image_url", "image_url": {"url": data_url(png())}}]}, *ask_about(png())]
    with pytest.raises(openai.BadRequestError, match="images go in user messages"):
        client.chat.completions.create(model=MODEL, messages=assistant_image)
