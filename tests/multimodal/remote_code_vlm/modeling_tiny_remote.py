"""The tiny remote-code VLM: patches -> linear encoder -> projector, merged into the text embeddings at the image
token (as LLaVA does), then a transformers LlamaForCausalLM."""

from typing import Any

import torch
from torch import nn
from transformers import GenerationMixin, LlamaForCausalLM, PreTrainedModel

from .configuration_tiny_remote import TinyRemoteVLMConfig


class TinyRemoteVLMForConditionalGeneration(PreTrainedModel, GenerationMixin):
    config_class = TinyRemoteVLMConfig
    base_model_prefix = "model"
    _supports_sdpa = True

    def __init__(self, config: TinyRemoteVLMConfig) -> None:
        super().__init__(config)
        patch_dim = 3 * config.patch_size * config.patch_size
        self.vision_tower = nn.Sequential(nn.Linear(patch_dim, config.vision_hidden_size), nn.GELU())
        self.multi_modal_projector = nn.Linear(config.vision_hidden_size, config.text_config.hidden_size)
        self.language_model = LlamaForCausalLM(config.text_config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        size = self.config.patch_size
        patches = pixel_values.unfold(2, size, size).unfold(3, size, size)  # (B, C, h, w, size, size)
        patches = patches.permute(0, 2, 3, 1, 4, 5).flatten(3).flatten(1, 2)  # (B, h*w, C*size*size)
        return self.multi_modal_projector(self.vision_tower(patches.to(self.dtype)))

    def forward(self, input_ids: torch.Tensor | None = None, pixel_values: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, **kwargs: Any) -> Any:
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
        if pixel_values is not None:
            features = self.image_features(pixel_values).reshape(-1, inputs_embeds.shape[-1])
            mask = (input_ids == self.config.image_token_id).unsqueeze(-1).expand_as(inputs_embeds)
            inputs_embeds = inputs_embeds.masked_scatter(mask, features.to(inputs_embeds.dtype))
        return self.language_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels,
                                   **kwargs)

    def prepare_inputs_for_generation(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None = None,
                                      **kwargs: Any) -> dict[str, Any]:
        inputs = super().prepare_inputs_for_generation(input_ids, **kwargs)
        if kwargs.get("is_first_iteration", True) and not kwargs.get("past_key_values"):
            inputs["pixel_values"] = pixel_values  # the image is in the cache after the first step
        return inputs
