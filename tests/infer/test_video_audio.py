"""Videos and audios in the engine, `lmforge chat --video/--audio` and the REPL's /video and /audio: decoded
with the data group's media options and expanded by the plugin training uses, so the prompt is the training
rendering and greedy answers are the model's own `generate`."""

import io

import pytest
from rich.console import Console

from lmforge.cli.repl import ChatSession, repl
from lmforge.config import build_config
from lmforge.data.multimodal.media import decode_media
from lmforge.data.templates.template import Message
from lmforge.errors import ModelError
from lmforge.infer.factory import create_engine
from lmforge.infer.stops import answer_text
from tests.conftest import run_cli
from tests.refdata import refdata

ASK = [Message("user", "What is this?")]
# family -> (medium, LLaMA-Factory demo file)
SERVED = {"qwen2_vl": ("videos", "1.mp4"), "llava_onevision": ("videos", "2.avi"), "qwen2_audio": ("audios", "1.mp3")}
OTHER = {"qwen2_vl": "audios", "llava_onevision": "audios", "qwen2_audio": "videos"}  # a medium each does not take
DECODING = {"video_max_pixels": 1024, "video_maxlen": 4, "video_fps": 2.0, "audio_sampling_rate": 16000}


def demo_path(name: str):
    return refdata("llamafactory_data", "mllm_demo_data", name)


def demo_media(name: str) -> bytes:
    return demo_path(name).read_bytes()


@pytest.fixture(scope="module", params=sorted(SERVED))
def served(request, tmp_path_factory):
    from lmforge.testing.tiny_vlm import build_tiny_vlm

    folder = build_tiny_vlm(tmp_path_factory.mktemp(request.param), request.param)
    engine = create_engine(build_config({"model_name_or_path": str(folder), "template": "auto", "do_sample": False,
                                         "max_new_tokens": 6, **DECODING}))
    yield request.param, engine
    engine.close()


def own_generate(engine, kind: str, data: bytes) -> tuple[list[int], list[int]]:
    """The processor's inputs for the training rendering (same decoding) and the model's greedy answer."""
    encoder = engine.media_encoder
    text = engine.template.render_text([Message("user", encoder.plugin.markers[kind] + "What is this?")],
                                       system=engine.default_system, add_generation_prompt=True)
    media = decode_media({kind: [data]}, encoder.options, "test")
    inputs = encoder.processor(text=[text], add_special_tokens=False, return_tensors="pt",
                               **encoder.plugin.processor_kwargs(kind, media.items(kind)[0], media, 0))
    output = engine.model.generate(**inputs, max_new_tokens=6, do_sample=False, eos_token_id=engine.eos_token_ids,
                                   pad_token_id=engine.pad_token_id)
    answer = output[0, inputs["input_ids"].shape[1]:].tolist()
    return inputs["input_ids"][0].tolist(), [token for token in answer if token not in engine.eos_token_ids]


def test_video_and_audio_prompts_answer_as_the_models_own_generate(served):
    family, engine = served
    kind, name = SERVED[family]
    data = demo_media(name)
    prompt_ids, answer = own_generate(engine, kind, data)
    assert engine.encode(ASK, **{kind: [data]}) == prompt_ids
    [candidate] = engine.candidates(ASK, **{kind: [data]})
    assert list(candidate.token_ids) == answer
    # a placeholder puts the medium where it stands: here the same place as the default (before the text)
    placeholder = {"videos": "<video>", "audios": "<audio>"}[kind]
    assert engine.encode([Message("user", placeholder + "What is this?")], **{kind: [data]}) == prompt_ids


def test_a_medium_the_model_does_not_take_is_refused_with_the_model_and_medium(served):
    family, engine = served
    other = OTHER[family]
    with pytest.raises(ModelError, match=rf"`{engine.model_name}` cannot take {other}: .* takes "):
        engine.candidates(ASK, **{other: [demo_media("1.mp3")]})


def test_the_repl_attaches_videos_and_audios_and_keeps_them_in_the_history(served):
    family, engine = served
    kind, name = SERVED[family]
    _, answer = own_generate(engine, kind, demo_media(name))
    out = io.StringIO()
    session = ChatSession(engine)
    session.attach(str(demo_path(name)), kind, Console(file=out, width=200))
    session.ask("What is this?", Console(file=out, width=200))
    assert f"{kind[:-1]} attached to your next message (1 waiting)" in out.getvalue()
    assert session.history[-1].content == answer_text(engine.tokenizer, answer, engine.kept_special_ids)
    assert session.media == {kind: [demo_media(name)]} and session.pending == {}


def test_the_repl_refuses_a_medium_the_model_does_not_take_and_goes_on(served, monkeypatch):
    family, engine = served
    other = "/" + OTHER[family][:-1]
    out = io.StringIO()
    console = Console(file=out, width=400)
    lines = iter([f"{other} {demo_path('1.mp3')}", "/exit"])
    monkeypatch.setattr(console, "input", lambda prompt="": next(lines))
    repl(engine, None, console)
    assert f"cannot take {other[1:]}s" in out.getvalue()


@pytest.mark.slow
def test_chat_with_a_video_or_an_audio_answers_as_the_models_own_generate(served, tmp_path):
    family, engine = served
    kind, name = SERVED[family]
    _, answer = own_generate(engine, kind, demo_media(name))
    config = tmp_path / "chat.yaml"
    config.write_text("do_sample: false\n")
    result = run_cli("chat", str(config), f"model_name_or_path={engine.model_name}", "template=auto",
                     "max_new_tokens=6", *(f"{key}={value}" for key, value in DECODING.items()),
                     f"--{kind[:-1]}", str(demo_path(name)), "--prompt", "What is this?")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == answer_text(engine.tokenizer, answer, engine.kept_special_ids).strip()


def test_voxtral_chat_with_an_audio_answers_as_the_model_on_mistral_commons_inputs(tmp_path):
    """Voxtral's processor expands audio only through mistral-common: the engine's prompt is mistral-common's
    encoding of the same question and clip (with the Tekken file the tokenizer was converted from), and the greedy
    answer is the model's own `generate` on those inputs."""
    import soundfile
    from transformers import VoxtralProcessor
    from transformers.tokenization_mistral_common import MistralCommonBackend

    from lmforge.testing.tiny_vlm import build_tiny_vlm
    from lmforge.testing.tiny_vlm_audio import write_tiny_tekken

    folder = build_tiny_vlm(tmp_path / "voxtral", "voxtral")
    engine = create_engine(build_config({"model_name_or_path": str(folder), "template": "auto", "do_sample": False,
                                         "max_new_tokens": 6, **DECODING}))
    try:
        # the demo clip as 16-bit PCM (as mistral-common reads files), so both sides read the same samples
        [clip] = decode_media({"audios": [demo_media("1.mp3")]}, engine.media_encoder.options, "test").items("audios")
        soundfile.write(tmp_path / "clip.wav", clip, 16000, subtype="PCM_16")
        data = (tmp_path / "clip.wav").read_bytes()
        (tmp_path / "tekken").mkdir()
        write_tiny_tekken(tmp_path / "tekken" / "tekken.json")
        mistral = VoxtralProcessor(feature_extractor=engine.media_encoder.processor.feature_extractor,
                                   tokenizer=MistralCommonBackend.from_pretrained(tmp_path / "tekken"))
        inputs = mistral.apply_chat_template([{"role": "user", "content": [
            {"type": "audio", "path": str(tmp_path / "clip.wav")}, {"type": "text", "text": "What is this?"}]}],
            tokenize=True, return_dict=True)
        assert engine.encode(ASK, audios=[data]) == inputs["input_ids"][0].tolist()
        output = engine.model.generate(**inputs, max_new_tokens=6, do_sample=False, eos_token_id=engine.eos_token_ids,
                                       pad_token_id=engine.pad_token_id)
        answer = [token for token in output[0, inputs["input_ids"].shape[1]:].tolist()
                  if token not in engine.eos_token_ids]
        [candidate] = engine.candidates(ASK, audios=[data])
        assert list(candidate.token_ids) == answer
    finally:
        engine.close()
