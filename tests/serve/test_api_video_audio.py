"""Videos and audios through the API with the official `openai` client: an `input_audio` part (as the client
sends it) and a `video_url` part (as vLLM and Qwen's servers take it) are answered as the engine answers the
same media, and malformed parts or media the model does not take get a 400 naming the field or medium."""

import base64

import pytest

from lmforge.config import build_config
from lmforge.data.templates.template import Message
from lmforge.infer.factory import create_engine
from lmforge.serve.api import ApiSettings, create_app
from lmforge.serve.media import MediaPolicy
from tests.infer.test_video_audio import DECODING, demo_media, demo_path
from tests.serve.test_api import Server

openai = pytest.importorskip("openai", reason="the openai client is a dev extra (pip install -e '.[dev]')")
MODEL = "tiny-mm"
ASK = [Message("user", "What is this?")]


@pytest.fixture(scope="module", params=["qwen2_vl", "qwen2_audio"])
def served(request, tmp_path_factory):
    from lmforge.testing.tiny_vlm import build_tiny_vlm

    folder = build_tiny_vlm(tmp_path_factory.mktemp(request.param), request.param)
    engine = create_engine(build_config({"model_name_or_path": str(folder), "template": "auto", "do_sample": False,
                                         "max_new_tokens": 6, **DECODING}))
    policy = MediaPolicy(allowed_dirs=(demo_path("1.mp4").parent,))
    with Server(create_app(engine, ApiSettings(model_id=MODEL, max_tokens_limit=32, media=policy))) as running:
        yield request.param, engine, openai.OpenAI(base_url=f"http://127.0.0.1:{running.port}/v1", api_key="none",
                                                   max_retries=0, timeout=120)
    engine.close()


def audio_part(name: str = "1.mp3", data: str | None = None) -> dict:
    encoded = data if data is not None else base64.b64encode(demo_media(name)).decode()
    return {"type": "input_audio", "input_audio": {"data": encoded, "format": name.rsplit(".", 1)[1]}}


def video_part(url: str) -> dict:
    return {"type": "video_url", "video_url": {"url": url}}


def video_data_url(name: str = "1.mp4") -> str:
    return "data:video/mp4;base64," + base64.b64encode(demo_media(name)).decode()


def ask(part: dict) -> list[dict]:
    return [{"role": "user", "content": [part, {"type": "text", "text": "What is this?"}]}]


def test_an_audio_or_a_video_part_is_answered_like_the_engine_does(served):
    family, engine, client = served
    if family == "qwen2_audio":
        parts, media = [audio_part()], {"audios": [demo_media("1.mp3")]}
    else:  # a data URL and an allowed local path give the same prompt
        parts, media = [video_part(video_data_url()), video_part(str(demo_path("1.mp4")))], {
            "videos": [demo_media("1.mp4")]}
    expected = engine.chat(ASK, **media)
    for part in parts:
        response = client.chat.completions.create(model=MODEL, messages=ask(part))
        assert response.choices[0].message.content == expected
        assert response.usage.prompt_tokens == len(engine.encode(ASK, **media))
    streamed = client.chat.completions.create(model=MODEL, messages=ask(parts[0]), stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in streamed) == expected


def test_a_medium_the_model_does_not_take_is_refused_naming_it(served):
    family, _, client = served
    part, medium = (video_part(video_data_url()), "videos") if family == "qwen2_audio" else (audio_part(), "audios")
    with pytest.raises(openai.BadRequestError, match=f"cannot take {medium}: its processor"):
        client.chat.completions.create(model=MODEL, messages=ask(part))


@pytest.mark.parametrize(("part", "message"), [
    (audio_part(data="not base64!"), r"messages\[0\]\.content\[0\]\.input_audio\.data is not valid base64"),
    ({"type": "input_audio"}, r"messages\[0\]\.content\[0\]\.input_audio is missing"),
    ({"type": "video_url"}, r"messages\[0\]\.content\[0\]\.video_url is missing"),
    (video_part("data:image/png;base64,aGk="), "a video data URL must look like `data:video/"),
    (video_part("/etc/hostname"), "local video paths are refused unless inside an allowed folder"),
    (video_part("http://169.254.169.254/clip.mp4"), "fetching remote videos is off"),
])
def test_malformed_parts_are_refused_naming_the_field(served, part, message):
    _, _, client = served
    with pytest.raises(openai.BadRequestError, match=message):
        client.chat.completions.create(model=MODEL, messages=ask(part))


def test_media_outside_user_messages_are_refused(served):
    _, _, client = served
    with pytest.raises(openai.BadRequestError, match=r"messages\[0\]\.content\[0\]: audios go in user messages"):
        client.chat.completions.create(model=MODEL, messages=[
            {"role": "assistant", "content": [audio_part()]}, {"role": "user", "content": "Hi"}])
