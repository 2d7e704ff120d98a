"""The tiny remote-code VLM's processor: it expands each `<|image_pad|>` into one token per image patch itself
(as Kimi-VL's and dots.ocr's processors do) and returns the pixel values."""

from typing import Any, ClassVar

from transformers import BatchFeature, ProcessorMixin

PATCH = 8  # the model config's patch_size


class TinyRemoteVLMProcessor(ProcessorMixin):
    attributes: ClassVar[list[str]] = ["image_processor", "tokenizer"]

    def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: str | None = None,
                 **kwargs: Any) -> None:
        self.image_token = "<|image_pad|>"
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        super().__init__(image_processor, tokenizer, chat_template=chat_template)

    def tokens_per_image(self) -> int:
        size = self.image_processor.size
        return (size["height"] // PATCH) * (size["width"] // PATCH)

    def __call__(self, images: Any = None, text: Any = None, return_tensors: str | None = None,
                 **kwargs: Any) -> BatchFeature:
        texts = [text] if isinstance(text, str) else list(text or [])
        data: dict[str, Any] = {}
        if images is not None:
            data.update(self.image_processor(images, return_tensors=return_tensors))
            run = self.image_token * self.tokens_per_image()
            texts = [t.replace(self.image_token, run) for t in texts]
        known = ("add_special_tokens", "padding", "truncation", "max_length")
        data.update(self.tokenizer(texts, return_tensors=return_tensors,
                                   **{k: v for k, v in kwargs.items() if k in known}))
        return BatchFeature(data)
