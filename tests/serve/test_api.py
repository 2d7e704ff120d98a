"""The OpenAI-compatible server, driven by the official `openai` client, on a server started here."""

import base64
import io
import socket
import threading
import time

import httpx
import pytest
from PIL import Image

from lmforge.config import build_config
from lmforge.infer.factory import create_engine
from lmforge.serve.api import ApiSettings, create_app

openai = pytest.importorskip("openai", reason="the openai client is a dev extra (pip install -e '.[dev]')")
MODEL = "tiny"
KEY = "test-key"


class Server:
    """uvicorn on 127.0.0.1 and a free port, in a thread; stopped by the fixture."""

    def __init__(self, app):
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start in 30 s"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


@pytest.fixture(scope="module")
def engine():
    cfg = build_config({"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "do_sample": False,
                        "max_new_tokens": 8})
    engine = create_engine(cfg)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory):
    images = tmp_path_factory.mktemp("images")
    from lmforge.serve.media import MediaPolicy

    settings = ApiSettings(model_id=MODEL, api_key=KEY, max_request_bytes=200_000, max_tokens_limit=64,
                           media=MediaPolicy(allowed_dirs=(images,)))
    with Server(create_app(engine, settings)) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"http://127.0.0.1:{server.port}/v1", api_key=KEY, max_retries=0, timeout=120)


HELLO = [{"role": "user", "content": "Hello!"}]


def test_models_lists_the_served_model(client):
    assert [model.id for model in client.models.list().data] == [MODEL]


def test_completion_is_the_engines_answer(client, engine):
    from lmforge.data.templates.template import Message

    response = client.chat.completions.create(model=MODEL, messages=HELLO)
    assert response.choices[0].message.content == engine.chat([Message("user", "Hello!")])
    assert response.choices[0].finish_reason in ("stop", "length")
    assert response.usage.completion_tokens > 0 and response.usage.prompt_tokens > 0


def test_streaming_adds_up_to_the_same_answer(client):
    whole = client.chat.completions.create(model=MODEL, messages=HELLO).choices[0].message.content
    chunks = list(client.chat.completions.create(model=MODEL, messages=HELLO, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_n_candidates_plain_and_streamed(client):
    response = client.chat.completions.create(model=MODEL, messages=HELLO, n=3, seed=5, temperature=1.0,
                                              logprobs=True)
    assert [c.index for c in response.choices] == [0, 1, 2]
    assert all(c.logprobs and c.logprobs.content for c in response.choices)
    texts = {}
    finished = set()
    for chunk in client.chat.completions.create(model=MODEL, messages=HELLO, n=3, seed=5, temperature=1.0,
                                                stream=True):
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            if choice.finish_reason:
                finished.add(choice.index)
    assert finished == {0, 1, 2}
    assert [texts[i] for i in range(3)] == [c.message.content for c in response.choices]  # same seed


def test_diverse_candidates_through_extra_body(client):
    response = client.chat.completions.create(
        model=MODEL, messages=HELLO, n=2,
        extra_body={"candidate_method": "diverse_beam", "num_beams": 4, "num_beam_groups": 2,
                    "diversity_penalty": 5.0})
    assert len(response.choices) == 2
    assert response.choices[0].message.content != response.choices[1].message.content


def test_stop_strings_are_honoured(client):
    whole = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=12).choices[0].message.content
    stop = whole[4:6]
    cut = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=12, stop=[stop])
    assert cut.choices[0].message.content == whole[:whole.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_limits_and_bad_requests_are_refused_clearly(client, server):
    with pytest.raises(openai.BadRequestError, match="over this server's limit of 64"):
        client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=1000)
    with pytest.raises(openai.BadRequestError, match="n 99 is over"):
        client.chat.completions.create(model=MODEL, messages=HELLO, n=99)
    with pytest.raises(openai.BadRequestError, match="is not served here"):
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    with pytest.raises(openai.BadRequestError, match="n > 1 with greedy decoding"):
        client.chat.completions.create(model=MODEL, messages=HELLO, n=2, temperature=0)
    huge = [{"role": "user", "content": "x" * 300_000}]
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model=MODEL, messages=huge)
    assert err.value.status_code == 413
    chunked = httpx.post(f"http://127.0.0.1:{server.port}/v1/chat/completions",
                         headers={"Authorization": f"Bearer {KEY}"}, content=iter([b"{" + b" " * 150_000] * 2))
    assert chunked.status_code == 413  # no Content-Length: counted while reading


def test_api_key_is_required(server):
    wrong = openai.OpenAI(base_url=f"http://127.0.0.1:{server.port}/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="invalid API key"):
        wrong.models.list()
    assert httpx.get(f"http://127.0.0.1:{server.port}/v1/models").status_code == 401


def _png_data_url():
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


@pytest.mark.parametrize(("url", "message"), [
    (_png_data_url(), "cannot take images: it is served as a text-only model"),
    ("http://169.254.169.254/latest/meta-data/", "fetching remote images is off"),
    ("/etc/hostname", "refused unless inside an allowed folder"),
    ("data:image/png;base64,not-base64!", "not valid base64"),
])
def test_images_are_checked_then_refused_for_a_text_model(client, url, message):
    content = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": url}}]
    with pytest.raises(openai.BadRequestError, match=message):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}])


def test_concurrent_requests_are_batched(client, engine):
    engine.worker.batch_sizes.clear()
    answers = [None] * 6
    barrier = threading.Barrier(6)

    def ask(i):
        barrier.wait(timeout=30)
        answers[i] = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": f"Say {i}"}]).choices[0].message.content

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(answer is not None for answer in answers)
    assert max(engine.worker.batch_sizes) > 1
