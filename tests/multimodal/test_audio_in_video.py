"""`use_audio_in_video`: a video's sound interleaved with its frames by time (Qwen2.5-Omni, Qwen3-Omni thinkers),
from the video file's own audio track or from LLaMA-Factory's `<video><audio>` pairs; refused for other models."""

import json
from pathlib import Path

import pytest

from lmforge.data.conversation import Conversation
from lmforge.data.multimodal.collator import MultimodalCollator
from lmforge.data.multimodal.examples import MMEncoder, to_row
from lmforge.data.multimodal.media import MediaError, MediaOptions
from lmforge.data.multimodal.plugin import get_mm_plugin, mm_plugin_for
from lmforge.data.multimodal.video_sound import VIDEO_SOUNDS, pair_video_sounds
from lmforge.data.templates.registry import get_template
from lmforge.data.templates.template import Message
from lmforge.errors import ConfigError
from tests.multimodal.conftest import load_vlm, train_steps
from tests.refdata import refdata

OPTIONS = MediaOptions(video_max_pixels=1024, video_maxlen=4, use_audio_in_video=True)


def mux(video: str, audio: str, out: str) -> None:
    """`video`'s frames with `audio` as its sound track, in one file (no demo video has a sound track)."""
    import av

    with av.open(video) as frames, av.open(audio) as sound, av.open(out, "w") as muxed:
        source = frames.streams.video[0]
        picture = muxed.add_stream("mpeg4", rate=source.average_rate)
        picture.width, picture.height, picture.pix_fmt = source.width, source.height, "yuv420p"
        track = muxed.add_stream("aac", rate=16000)
        for frame in frames.decode(source):
            muxed.mux(picture.encode(frame.reformat(format="yuv420p")))
        muxed.mux(picture.encode())
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=16000)
        for frame in sound.decode(audio=0):
            for chunk in resampler.resample(frame):
                chunk.pts = None
                muxed.mux(track.encode(chunk))
        muxed.mux(track.encode())


@pytest.fixture(scope="module")
def sounded_video(tmp_path_factory):
    demo = refdata("llamafactory_data", "mllm_demo_data")
    out = tmp_path_factory.mktemp("video") / "4_with_sound.mp4"
    mux(str(demo / "4.mp4"), str(demo / "4.mp3"), str(out))
    return str(out)


def row(text: str, media: dict[str, list[str]], number: int = 1) -> Conversation:
    return Conversation([Message("user", text), Message("assistant", "A girl draws a guitar.")], None,
                        f"rows.json:row {number}", media=media)


def test_a_video_followed_by_its_audio_is_paired_and_a_lone_video_keeps_its_own_track():
    texts, media = pair_video_sounds(["<video><audio>What is said?", "<video>And here? <audio>"],
                                     {"videos": ["a.mp4", "b.mp4"], "audios": ["a.mp3", "c.wav"]}, "rows.json:row 1")
    assert texts == ["<video>What is said?", "<video>And here? <audio>"]
    assert media == {"videos": ["a.mp4", "b.mp4"], "audios": ["c.wav"], VIDEO_SOUNDS: ["a.mp3", "b.mp4"]}
    assert pair_video_sounds(["<audio>Hi"], {"audios": ["a.mp3"]}, "w") == (["<audio>Hi"], {"audios": ["a.mp3"]})
    with pytest.raises(MediaError, match=r"rows.json:row 2: an `<audio>` placeholder stands before a `<video>`"):
        pair_video_sounds(["<audio>then <video>"], {"videos": ["a.mp4"], "audios": ["a.mp3"]}, "rows.json:row 2")


def test_models_that_do_not_interleave_a_videos_sound_refuse_the_key():
    with pytest.raises(ConfigError, match=r"`use_audio_in_video: true` needs a model that interleaves.*`qwen2_vl`"):
        MMEncoder(None, get_mm_plugin("qwen2_vl"), None, OPTIONS, 1024)


@pytest.mark.parametrize("family", ["qwen2_5_omni", "qwen3_omni"])
def test_the_video_and_its_sound_are_one_interleaved_run_with_shared_time_positions(family, tiny_vlm, sounded_video):
    processor, model = load_vlm(tiny_vlm(family), family)
    encoder = MMEncoder(processor, mm_plugin_for(processor), get_template("chatml"), OPTIONS, 4096)
    assert encoder.plugin.video_sound
    demo = refdata("llamafactory_data", "mllm_demo_data")
    rows = [row("<video>What happens?", {"videos": [sounded_video]}),
            row("<video><audio>What happens?", {"videos": [str(demo / "4.mp4")], "audios": [str(demo / "4.mp3")]}, 2)]
    for example in map(encoder.encode, rows):
        ids = example.input_ids
        start = ids.index(processor.tokenizer.convert_tokens_to_ids("<|vision_bos|>"))
        assert ids[start + 1] == processor.tokenizer.convert_tokens_to_ids("<|audio_bos|>")  # one run, no lone audio
        media = [token for token in ids if token in (processor.video_token_id, processor.audio_token_id)]
        kinds = [token for i, token in enumerate(media) if i == 0 or media[i - 1] != token]
        assert kinds[:3] == [processor.video_token_id, processor.audio_token_id, processor.video_token_id], kinds
    # the data report counts what the batches hold: frames and sound, once
    assert encoder.media_tokens(rows[1]) == len(media)
    batch = MultimodalCollator(encoder)([to_row(item) for item in rows])
    assert {"pixel_values_videos", "video_grid_thw", "input_features", "feature_attention_mask"} <= set(batch)
    assert batch["use_audio_in_video"] is True and batch["input_features"].shape[0] == 2
    positions, _ = model.model.get_rope_index(batch["input_ids"], None, batch["video_grid_thw"],
                                              batch["attention_mask"], True, batch["feature_attention_mask"].sum(-1),
                                              batch["video_second_per_grid"])
    time = positions[0, 0]
    video, audio = batch["input_ids"][0] == processor.video_token_id, batch["input_ids"][0] == processor.audio_token_id
    # one time axis: the sound's positions lie among the frames', not after them
    assert time[audio].min() < time[video].max(), (time[audio].min(), time[video].max())
    losses = train_steps(model, batch, 2)
    assert losses[1] < losses[0], losses


def test_a_video_without_a_sound_track_is_an_error_naming_it_and_its_row(tiny_vlm):
    processor, _ = load_vlm(tiny_vlm("qwen2_5_omni"), "qwen2_5_omni")
    encoder = MMEncoder(processor, mm_plugin_for(processor), get_template("chatml"), OPTIONS, 4096)
    silent = str(refdata("llamafactory_data", "mllm_demo_data", "4.mp4"))
    with pytest.raises(MediaError, match=r"rows.json:row 1: .*4.mp4, a video's sound .* has no audio track"):
        encoder.encode(row("<video>What happens?", {"videos": [silent]}))


@pytest.mark.slow
def test_sft_with_use_audio_in_video_trains_through_the_runner(tiny_vlm, sounded_video, tmp_path, monkeypatch):
    from lmforge.config import build_config
    from lmforge.train.runner import run_training
    from tests.multimodal.test_families_train_export import TRAIN, assert_two_finite_losses

    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))
    rows = [{"messages": [{"role": "user", "content": "<video>What happens?"},
                          {"role": "assistant", "content": "A girl draws a guitar."}], "videos": [sounded_video]}] * 4
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    (tmp_path / "dataset_info.json").write_text(json.dumps({"rows": {
        "file_name": "rows.json", "formatting": "sharegpt", "columns": {"messages": "messages", "videos": "videos"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}}))
    out = tmp_path / "lora"
    run_training(build_config({**TRAIN, "model_name_or_path": str(tiny_vlm("qwen2_5_omni")), "dataset": "rows",
                               "dataset_dir": str(tmp_path), "finetuning_type": "lora", "output_dir": str(out),
                               "use_audio_in_video": True}))
    assert_two_finite_losses(out)


def test_chat_with_a_sounded_video_answers_as_the_models_own_generate(tiny_vlm, sounded_video):
    from lmforge.config import build_config
    from lmforge.data.multimodal.media import decode_media
    from lmforge.infer.factory import create_engine

    engine = create_engine(build_config({"model_name_or_path": str(tiny_vlm("qwen2_5_omni")), "template": "auto",
                                         "do_sample": False, "max_new_tokens": 6, "video_max_pixels": 1024,
                                         "video_maxlen": 4, "use_audio_in_video": True}))
    try:
        encoder, data = engine.media_encoder, Path(sounded_video).read_bytes()
        text = engine.template.render_text([Message("user", encoder.plugin.markers["videos"] + "What happens?")],
                                           system=engine.default_system, add_generation_prompt=True)
        media = decode_media({"videos": [data], VIDEO_SOUNDS: [data]}, encoder.options, "test")
        inputs = encoder.processor(text=[text], add_special_tokens=False, return_tensors="pt",
                                   **encoder.plugin.processor_kwargs("videos", media.videos[0], media, 0))
        assert inputs["input_features"].shape[0] == 1
        output = engine.model.generate(**inputs, use_audio_in_video=True, max_new_tokens=6, do_sample=False,
                                       eos_token_id=engine.eos_token_ids, pad_token_id=engine.pad_token_id)
        answer = [token for token in output[0, inputs["input_ids"].shape[1]:].tolist()
                  if token not in engine.eos_token_ids]
        ask = [Message("user", "What happens?")]
        assert engine.encode(ask, videos=[data]) == inputs["input_ids"][0].tolist()
        [candidate] = engine.candidates(ask, videos=[data])
        assert list(candidate.token_ids) == answer
    finally:
        engine.close()
