"""Save the tiny remote-code VLM as a checkpoint folder that loads only with `trust_remote_code=True`."""

from pathlib import Path

from lmforge.testing.tiny_vlm_parts import chat_template, tiny_text, tiny_vlm_tokenizer


def build_remote_code_vlm(folder: Path) -> Path:
    """Random weights, the processor and tokenizer, and the three code files named in the folder's auto_map."""
    import torch
    from transformers import SiglipImageProcessor

    from tests.multimodal.remote_code_vlm.configuration_tiny_remote import TinyRemoteVLMConfig
    from tests.multimodal.remote_code_vlm.modeling_tiny_remote import TinyRemoteVLMForConditionalGeneration
    from tests.multimodal.remote_code_vlm.processing_tiny_remote import TinyRemoteVLMProcessor

    tokenizer = tiny_vlm_tokenizer({"image_token": "<|image_pad|>"},
                                   template=chat_template(image="<|image_pad|>"))
    config = TinyRemoteVLMConfig(text_config={"model_type": "llama", **tiny_text(tokenizer)},
                                 image_token_id=tokenizer.image_token_id, tie_word_embeddings=False)
    TinyRemoteVLMConfig.register_for_auto_class()
    TinyRemoteVLMForConditionalGeneration.register_for_auto_class("AutoModelForImageTextToText")
    TinyRemoteVLMProcessor.register_for_auto_class()
    torch.manual_seed(0)
    TinyRemoteVLMForConditionalGeneration(config).save_pretrained(folder)
    image_processor = SiglipImageProcessor(size={"height": 16, "width": 16})
    TinyRemoteVLMProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder
