"""Media decoding and the errors a bad row gets: file, row and what was expected."""

import io

import pytest
import torch
from PIL import Image

from lmforge.data.conversation import Conversation
from lmforge.data.multimodal.collator import MultimodalCollator
from lmforge.data.multimodal.examples import MMEncoder, to_row
from lmforge.data.multimodal.media import (
    MediaError,
    MediaOptions,
    decode_media,
    load_audio,
    load_image,
    load_video,
    sample_indices,
)
from lmforge.data.multimodal.plugin import mm_plugin_for
from lmforge.data.templates import get_template
from lmforge.data.templates.template import Message
from tests.multimodal.conftest import demo_conversations, load_vlm
from tests.refdata import refdata

OPTIONS = MediaOptions(image_max_pixels=64 * 64, video_max_pixels=32 * 32, video_fps=1.0, video_maxlen=4)


def demo(name: str):
    return refdata("llamafactory_data", "mllm_demo_data", name)


def test_images_from_paths_bytes_and_pil_are_resized_into_the_pixel_range():
    path = demo("1.jpg")
    for source in (str(path), path.read_bytes(), {"bytes": path.read_bytes()}, Image.open(path)):
        image = load_image(source, OPTIONS, "row 1")
        assert image.mode == "RGB" and image.width * image.height <= 64 * 64
    tiny = Image.new("RGB", (4, 4))
    grown = load_image(tiny, MediaOptions(image_min_pixels=32 * 32), "row 1")
    assert grown.width * grown.height >= 31 * 31


def test_remote_urls_are_refused_unless_allowed():
    with pytest.raises(MediaError, match=r"row 3: https://example.com/a.jpg is a remote URL; set `allow_remote_media"):
        load_image("https://example.com/a.jpg", OPTIONS, "row 3")


def test_missing_and_unreadable_files_name_the_row_and_the_file(tmp_path):
    with pytest.raises(MediaError, match=r"data.json:row 2: media file not found: .*nope.jpg"):
        load_image(str(tmp_path / "nope.jpg"), OPTIONS, "data.json:row 2")
    broken = tmp_path / "broken.jpg"
    broken.write_text("not an image")
    with pytest.raises(MediaError, match=r"data.json:row 2: cannot read image .*broken.jpg"):
        load_image(str(broken), OPTIONS, "data.json:row 2")
    with pytest.raises(MediaError, match=r"cannot read video .*broken.jpg"):
        load_video(str(broken), OPTIONS, "data.json:row 2")
    with pytest.raises(MediaError, match=r"row 2: .*broken.jpg has no audio stream: it is not an audio file"):
        load_audio(str(broken), OPTIONS, "data.json:row 2")


def test_video_frames_are_sampled_at_video_fps_up_to_video_maxlen():
    frames, fps = load_video(str(demo("1.mp4")), OPTIONS, "row 1")
    assert 1 <= len(frames) <= 4 and all(f.width * f.height <= 32 * 32 for f in frames) and fps > 0
    assert sample_indices(100, 10.0, 2.0, 8) == [0, 12, 25, 37, 50, 62, 75, 87]
    assert sample_indices(3, 0.1, 2.0, 8) == [0]


def test_audio_is_resampled_to_the_sampling_rate():
    for name in ("1.mp3", "2.wav", "3.flac"):
        low = load_audio(str(demo(name)), MediaOptions(audio_sampling_rate=8000), "row 1")
        high = load_audio(str(demo(name)), MediaOptions(audio_sampling_rate=16000), "row 1")
        assert low.dtype.name == "float32" and abs(len(high) / len(low) - 2) < 0.01


def test_placeholder_count_mismatch_names_the_row_and_both_counts():
    image = str(demo("1.jpg"))
    conversation = Conversation([Message("user", "<image><image>Who?"), Message("assistant", "Kane.")], None,
                                "mllm.json:row 7", media={"images": [image]})
    with pytest.raises(MediaError, match=r"mllm.json:row 7: 2 `<image>` placeholder\(s\) in the messages but 1 "
                                         r"images given"):
        to_row(conversation)


def test_each_media_file_is_decoded_once_per_example(tiny_vlm, monkeypatch):
    import lmforge.data.multimodal.examples as examples

    processor, _ = load_vlm(tiny_vlm("qwen2_vl"), "qwen2_vl")
    calls = []

    def counting(media, options, where):
        calls.append(where)
        return decode_media(media, options, where)

    monkeypatch.setattr(examples, "decode_media", counting)
    encoder = MMEncoder(processor, mm_plugin_for(processor), get_template("chatml"), OPTIONS, 1024)
    conversations = demo_conversations("mllm_demo.json", "images", 3)
    MultimodalCollator(encoder)([to_row(c) for c in conversations])
    assert calls == [c.source for c in conversations]


def test_cutoff_through_an_image_fails_with_the_length_needed(tiny_vlm):
    processor, _ = load_vlm(tiny_vlm("llava"), "llava")
    encoder = MMEncoder(processor, mm_plugin_for(processor), get_template("chatml"), OPTIONS, cutoff_len=6)
    [conversation] = demo_conversations("mllm_demo.json", "images", 1)
    with pytest.raises(MediaError, match=r"mllm_demo.json:row 1: cutoff_len 6 cuts through its media tokens "
                                         r"\(the example needs \d+ tokens\)"):
        encoder.encode(conversation)


@pytest.mark.parametrize("family", ["qwen2_vl", "intern_vl"])
def test_videos_train(family, tiny_vlm):
    processor, model = load_vlm(tiny_vlm(family), family)
    encoder = MMEncoder(processor, mm_plugin_for(processor), get_template("chatml"), OPTIONS, 2048)
    batch = MultimodalCollator(encoder)([to_row(c) for c in demo_conversations("mllm_video_demo.json", "videos", 2)])
    assert "pixel_values_videos" in batch or "pixel_values" in batch
    assert torch.isfinite(model(**batch).loss)


def test_image_bytes_decode_like_the_file():
    path = demo("2.jpg")
    assert load_image(io.BytesIO(path.read_bytes()).getvalue(), OPTIONS, "r").size == load_image(
        str(path), OPTIONS, "r").size


def test_media_a_model_does_not_take_is_refused(tiny_vlm):
    processor, _ = load_vlm(tiny_vlm("llava"), "llava")
    encoder = MMEncoder(processor, mm_plugin_for(processor), get_template("chatml"), OPTIONS, 1024)
    [conversation] = demo_conversations("mllm_video_demo.json", "videos", 1)
    with pytest.raises(MediaError, match=r"row 1: has videos, which `Llava` models do not take \(they take images\)"):
        encoder.encode(conversation)


def _video(path, frames, fps=4):
    """A small mpeg4 video in `path` (AVI: its header is written even when no frame is), `frames` black frames."""
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        container.start_encoding()
        for _ in range(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")))
        container.mux(stream.encode())
    return str(path)


def _file(path, data):
    path.write_bytes(data)
    return path


def _wav(path, rate, channels, seconds=1.0):
    import wave

    import numpy as np

    samples = (np.sin(np.arange(int(rate * seconds)) / 10) * 8000).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.repeat(samples, channels).tobytes())
    return str(path)


@pytest.mark.parametrize(("kind", "make", "message"), [
    ("images", lambda d: _file(d / "page.pdf", b"%PDF-1.4 not an image"),
     r"data.json:row 4: cannot read image .*page.pdf: cannot identify image file"),
    ("images", lambda d: _file(d / "cut.jpg", demo("1.jpg").read_bytes()[:300]),
     r"data.json:row 4: cannot read image .*cut.jpg"),
    ("videos", lambda d: _video(d / "empty.avi", 0), r"data.json:row 4: video .*empty.avi has no frames"),
    ("videos", lambda d: _wav(d / "speech.wav", 16000, 1),
     r"data.json:row 4: .*speech.wav has no video stream: it is not a video file \(check the row's `videos` column\)"),
    ("audios", lambda d: _video(d / "silent.avi", 4),
     r"data.json:row 4: .*silent.avi has no audio stream: it is not an audio file \(check the row's `audios` column\)"),
    ("audios", lambda d: _file(d / "bad.wav", b"RIFF\0\0\0\0WAVEfmt garbage"),
     r"data.json:row 4: cannot read audio .*bad.wav: .*Invalid data"),
])
def test_bad_media_files_fail_naming_the_row_the_file_and_the_medium(kind, make, message, tmp_path):
    with pytest.raises(MediaError, match=message):
        decode_media({kind: [str(make(tmp_path))]}, OPTIONS, "data.json:row 4")


def test_audio_at_another_rate_or_in_stereo_is_resampled_to_mono_at_audio_sampling_rate(tmp_path):
    """Audio "at the wrong rate" is converted, not refused: the processor always gets `audio_sampling_rate`."""
    for rate, channels in ((44100, 2), (8000, 1), (16000, 1)):
        audio = decode_media({"audios": [_wav(tmp_path / f"{rate}-{channels}.wav", rate, channels, 1.5)]},
                             MediaOptions(audio_sampling_rate=16000), "row 1")
        [samples] = audio.audios
        assert audio.audio_sampling_rate == 16000 and samples.ndim == 1
        assert abs(len(samples) - 24000) <= 64  # 1.5 s at 16 kHz, whatever the file's rate


def test_a_corrupt_image_in_a_dataset_fails_before_training_naming_the_row_and_the_file(tiny_vlm, tmp_path):
    """The data report processes every example's media (counting their tokens), so a bad file stops the run
    while its data is prepared, not at the batch that reaches it; the row is never dropped."""
    import json

    from lmforge.config import build_config
    from tests.stage_data import build_stage_datasets

    processor, _ = load_vlm(tiny_vlm("qwen2_vl"), "qwen2_vl")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    turns = [{"role": "user", "content": "<image>What is it?"}, {"role": "assistant", "content": "A cat."}]
    rows = [{"messages": turns, "images": [image]} for image in (str(demo("1.jpg")), "broken.png")]
    (tmp_path / "data.json").write_text(json.dumps(rows))
    (tmp_path / "dataset_info.json").write_text(json.dumps({"pics": {
        "file_name": "data.json", "formatting": "sharegpt", "columns": {"messages": "messages", "images": "images"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}}))
    options = {"stage": "sft", "dataset": "pics", "dataset_dir": str(tmp_path), "cutoff_len": 512,
               "image_max_pixels": 64 * 64}
    with pytest.raises(MediaError, match=r"data.json:row 2: cannot read image .*broken.png"):
        build_stage_datasets(build_config({**options, "on_bad_row": "skip"}), processor.tokenizer,
                             get_template("chatml"), processor)
