"""Vision-language models in the engine: images go through the multimodal plugin training uses."""

import io
import threading

import pytest
import torch
from PIL import Image

from lmforge.config import build_config
from lmforge.data.templates.template import Message
from lmforge.errors import ConfigError
from lmforge.infer.factory import create_engine


def png(color=(200, 10, 10), size=(40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from lmforge.testing.tiny_vlm import build_tiny_vlm

    folder = build_tiny_vlm(tmp_path_factory.mktemp("qwen2_vl"), "qwen2_vl")
    engine = create_engine(build_config({"model_name_or_path": str(folder), "template": "qwen2_vl",
                                         "do_sample": False, "max_new_tokens": 6}))
    yield engine
    engine.close()


ASK = [Message("user", "What is this?")]


def test_a_vlm_is_served_with_its_processor_and_plugin(engine):
    assert type(engine.model).__name__ == "Qwen2VLForConditionalGeneration"
    assert engine.supports_images and engine.media_encoder.plugin.name == "qwen2_vl"


def test_greedy_answer_matches_transformers_on_the_processors_own_inputs(engine):
    """The reference: the family's processor expands its own image marker in the template's rendering."""
    processor = engine.media_encoder.processor
    marker = engine.media_encoder.plugin.markers["images"]
    text = engine.template.render_text([Message("user", marker + "What is this?")],
                                       system=engine.default_system, add_generation_prompt=True)
    inputs = processor(text=[text], images=[Image.open(io.BytesIO(png())).convert("RGB")], return_tensors="pt")
    expected = engine.model.generate(**inputs, max_new_tokens=6, do_sample=False, eos_token_id=engine.eos_token_ids,
                                     pad_token_id=engine.pad_token_id)[0, inputs["input_ids"].shape[1]:]
    [candidate] = engine.candidates(ASK, images=[png()])
    assert engine.encode(ASK, images=[png()]) == inputs["input_ids"][0].tolist()
    assert list(candidate.token_ids) == [t for t in expected.tolist() if t not in engine.eos_token_ids]


def test_the_image_changes_the_answer_and_placeholders_place_it(engine):
    red, blue = engine.prompt(ASK, images=[png()]), engine.prompt(ASK, images=[png((0, 0, 250), (60, 60))])
    assert red.ids != blue.ids  # 60x60 has more merged patches than 40x30
    placed = engine.prompt([Message("user", "What is this?<image>")], images=[png()])
    image_pad = engine.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert placed.ids.index(image_pad) > red.ids.index(image_pad)  # after the question, where it was put


def test_candidates_streaming_and_beams_with_an_image(engine):
    image = [png()]
    sampled = engine.candidates(ASK, images=image, options=engine.options(n=2, do_sample=True, seed=0))
    assert len(sampled) == 2 and all(c.logprob is not None for c in sampled)
    with torch.no_grad():  # the log-probability is scored with the image in the prompt
        prompt = engine.prompt(ASK, images=image)
        assert sampled[0].logprob == pytest.approx(engine._scored(prompt.ids, [sampled[0]], prompt.media)[0].logprob)
    assert "".join(engine.stream_chat(ASK, images=image)) == engine.chat(ASK, images=image)
    beams = engine.candidates(ASK, images=image, options=engine.options(n=2, method="beam", num_beams=2))
    assert len(beams) == 2 and all(c.beam_score is not None for c in beams)
    with pytest.raises(ConfigError, match="takes text prompts only"):
        engine.candidates(ASK, images=image, options=engine.options(n=2, method="diverse_beam", num_beams=4,
                                                                    num_beam_groups=2))


def test_text_requests_still_batch_beside_image_requests(engine):
    engine.worker.batch_sizes.clear()
    results = {}
    barrier = threading.Barrier(4)

    def ask(i):
        barrier.wait(timeout=30)
        results[i] = engine.chat([Message("user", f"Say {i}")], images=[png()] if i == 0 else None)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 4
    assert max(engine.worker.batch_sizes) > 1  # the text-only ones shared a call
    assert results[0] == engine.chat([Message("user", "Say 0")], images=[png()])


def test_placeholder_count_must_match_the_images(engine):
    from lmforge.data.multimodal.media import MediaError

    with pytest.raises(MediaError, match="2 `<image>` placeholder"):
        engine.prompt([Message("user", "<image><image>Compare.")], images=[png()])
