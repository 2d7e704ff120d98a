"""The config of the tiny remote-code VLM: a patch-embedding vision encoder and a Llama text model."""

from typing import Any, ClassVar

from transformers import LlamaConfig, PretrainedConfig


class TinyRemoteVLMConfig(PretrainedConfig):
    model_type = "tiny_remote_vlm"
    sub_configs: ClassVar[dict[str, type]] = {"text_config": LlamaConfig}

    def __init__(self, text_config: Any = None, image_token_id: int = 0, image_size: int = 16, patch_size: int = 8,
                 vision_hidden_size: int = 32, **kwargs: Any) -> None:
        self.text_config = LlamaConfig(**text_config) if isinstance(text_config, dict) else text_config or LlamaConfig()
        self.image_token_id = image_token_id
        self.image_size = image_size
        self.patch_size = patch_size
        self.vision_hidden_size = vision_hidden_size
        super().__init__(**kwargs)
