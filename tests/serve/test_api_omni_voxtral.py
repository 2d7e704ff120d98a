"""Audio families through the API with the official `openai` client, answered as the model's own `generate` on the
processor's inputs: Qwen2.5-Omni with `use_audio_in_video` chosen per request (`mm_processor_kwargs`, as vLLM's
server takes it; the served config's value by default), and Voxtral with an `input_audio` part."""

import base64
from dataclasses import replace

import pytest

from lmforge.config import build_config
from lmforge.data.multimodal.media import decode_media
from lmforge.data.multimodal.video_sound import VIDEO_SOUNDS
from lmforge.data.templates.template import Message
from lmforge.infer.factory import create_engine
from lmforge.infer.stops import token_bytes
from tests.infer.test_video_audio import DECODING, demo_media
from tests.multimodal.test_audio_in_video import mux
from tests.refdata import refdata
from tests.serve.openai_app import openai_client

openai = pytest.importorskip("openai", reason="the openai client is a dev extra (pip install -e '.[dev]')")
MODEL = "tiny-audio"
QUESTION = "What happens?"


@pytest.fixture(scope="module")
def sounded_video(tmp_path_factory) -> bytes:
    demo = refdata("llamafactory_data", "mllm_demo_data")
    out = tmp_path_factory.mktemp("video") / "4_with_sound.mp4"
    mux(str(demo / "4.mp4"), str(demo / "4.mp3"), str(out))
    return out.read_bytes()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """family -> folder of its tiny random model, built once per module."""
    from lmforge.testing.tiny_vlm import build_tiny_vlm

    built = {}

    def get(family: str):
        if family not in built:
            built[family] = build_tiny_vlm(tmp_path_factory.mktemp(family), family)
        return built[family]

    return get


def engine_for(folder, **keys):
    return create_engine(build_config({"model_name_or_path": str(folder), "template": "auto", "do_sample": False,
                                       "max_new_tokens": 6, **DECODING, **keys}))


def own_answer(engine, inputs, **flags) -> tuple[int, list[bytes]]:
    """The prompt's length and the bytes of each token of the model's greedy answer on `inputs`."""
    output = engine.model.generate(**inputs, **flags, max_new_tokens=6, do_sample=False,
                                   eos_token_id=engine.eos_token_ids, pad_token_id=engine.pad_token_id)
    answer = [token for token in output[0, inputs["input_ids"].shape[1]:].tolist() if token not in engine.eos_token_ids]
    return inputs["input_ids"].shape[1], [token_bytes(engine.tokenizer, token) for token in answer]


def api_answer(client, content: list[dict], **extra) -> tuple[int, list[bytes]]:
    response = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": content}],
                                              logprobs=True, extra_body=extra or None)
    return response.usage.prompt_tokens, [bytes(entry.bytes) for entry in response.choices[0].logprobs.content]


def omni_inputs(engine, video: bytes, use_audio_in_video: bool):
    """Qwen2.5-Omni's processor on the training rendering of the question and the video, with or without its sound."""
    encoder = engine.media_encoder
    options = replace(encoder.options, use_audio_in_video=use_audio_in_video)
    text = engine.template.render_text([Message("user", encoder.plugin.markers["videos"] + QUESTION)],
                                       system=engine.default_system, add_generation_prompt=True)
    media = decode_media({"videos": [video], **({VIDEO_SOUNDS: [video]} if use_audio_in_video else {})}, options,
                         "test")
    return encoder.processor(text=[text], add_special_tokens=False, return_tensors="pt",
                             **encoder.plugin.processor_kwargs("videos", media.videos[0], media, 0))


@pytest.mark.parametrize("served_default", [False, True])
def test_use_audio_in_video_per_request_answers_as_the_models_own_generate(served_default, tiny, sounded_video):
    engine = engine_for(tiny("qwen2_5_omni"), use_audio_in_video=served_default)
    content = [{"type": "video_url", "video_url": {"url": "data:video/mp4;base64,"
                                                         + base64.b64encode(sounded_video).decode()}},
               {"type": "text", "text": QUESTION}]
    try:
        expected = {flag: own_answer(engine, omni_inputs(engine, sounded_video, flag), use_audio_in_video=flag)
                    for flag in (False, True)}
        assert expected[True][0] > expected[False][0] and all(tokens for _, tokens in expected.values())
        with openai_client(engine, MODEL) as client:
            for flag in (False, True):
                assert api_answer(client, content, mm_processor_kwargs={"use_audio_in_video": flag}) == expected[flag]
            assert api_answer(client, content) == expected[served_default]  # no flag: the served config's
            assert api_answer(client, content, mm_processor_kwargs={}) == expected[served_default]
    finally:
        engine.close()


def test_use_audio_in_video_is_refused_for_a_model_that_does_not_interleave_sound(tiny):
    engine = engine_for(tiny("qwen2_vl"))
    try:
        with openai_client(engine, MODEL) as client:
            with pytest.raises(openai.BadRequestError, match=r"cannot take `use_audio_in_video: true`: only models "
                                                             r"that interleave"):
                api_answer(client, [{"type": "text", "text": QUESTION}],
                           mm_processor_kwargs={"use_audio_in_video": True})
            with pytest.raises(openai.BadRequestError, match=r"mm_processor_kwargs.*fps"):
                api_answer(client, [{"type": "text", "text": QUESTION}], mm_processor_kwargs={"fps": 2})
    finally:
        engine.close()


def test_voxtral_input_audio_answers_as_the_model_on_mistral_commons_inputs(tiny, tmp_path):
    """An `input_audio` part (base64 WAV, as the openai client sends it) on the tiny Voxtral: the API's prompt is
    mistral-common's encoding of the question and clip, its greedy tokens the model's `generate` on those inputs."""
    import soundfile
    from transformers import VoxtralProcessor
    from transformers.tokenization_mistral_common import MistralCommonBackend

    from lmforge.testing.tiny_vlm_audio import write_tiny_tekken

    engine = engine_for(tiny("voxtral"))
    try:
        # the demo clip as 16-bit PCM (as mistral-common reads files), so both sides read the same samples
        [clip] = decode_media({"audios": [demo_media("1.mp3")]}, engine.media_encoder.options, "test").items("audios")
        soundfile.write(tmp_path / "clip.wav", clip, 16000, subtype="PCM_16")
        (tmp_path / "tekken").mkdir()
        write_tiny_tekken(tmp_path / "tekken" / "tekken.json")
        mistral = VoxtralProcessor(feature_extractor=engine.media_encoder.processor.feature_extractor,
                                   tokenizer=MistralCommonBackend.from_pretrained(tmp_path / "tekken"))
        inputs = mistral.apply_chat_template([{"role": "user", "content": [
            {"type": "audio", "path": str(tmp_path / "clip.wav")}, {"type": "text", "text": QUESTION}]}],
            tokenize=True, return_dict=True)
        part = {"type": "input_audio", "input_audio": {
            "data": base64.b64encode((tmp_path / "clip.wav").read_bytes()).decode(), "format": "wav"}}
        with openai_client(engine, MODEL) as client:
            expected = own_answer(engine, inputs)
            assert expected[1] and api_answer(client, [part, {"type": "text", "text": QUESTION}]) == expected
    finally:
        engine.close()
