"""Prompts with images for generation (chat --image, the API) go through the same plugin."""

import pytest
import torch

from lmforge.data.multimodal.collator import generation_inputs
from lmforge.data.multimodal.examples import MMEncoder
from lmforge.data.multimodal.media import MediaOptions
from lmforge.data.multimodal.plugin import mm_plugin_for
from lmforge.data.templates import get_template
from lmforge.data.templates.template import Message
from tests.multimodal.conftest import load_vlm
from tests.refdata import refdata


@pytest.mark.parametrize("family", ["qwen2_vl", "llava", "gemma3", "paligemma"])
def test_generate_from_an_image_prompt(family, tiny_vlm):
    processor, model = load_vlm(tiny_vlm(family), family)
    encoder = MMEncoder(processor, mm_plugin_for(processor), get_template("chatml"),
                        MediaOptions(image_max_pixels=64 * 64), 1024)
    image = refdata("llamafactory_data", "mllm_demo_data", "1.jpg")
    with_image = encoder.prompt([Message("user", "Who are they?")], {"images": [image.read_bytes()]})
    text_only = encoder.prompt([Message("user", "Hello!")], {})
    media_ids = encoder.plugin.media_token_ids(processor.tokenizer)
    assert any(token in media_ids for token in with_image.input_ids)
    assert processor.tokenizer.decode(with_image.input_ids).rstrip().endswith("<|im_start|>assistant")
    inputs = generation_inputs(encoder, [with_image, text_only])
    assert inputs["attention_mask"][1, 0] == 0  # left padding
    output = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert output.shape == (2, inputs["input_ids"].shape[1] + 4)
    with torch.no_grad():  # the prompt's last logits do not depend on padding
        alone = generation_inputs(encoder, [with_image])
        torch.testing.assert_close(model(**alone).logits[0, -1], model(**inputs).logits[0, -1], atol=1e-4, rtol=1e-4)
