"""What kind of model a checkpoint is, decided from its config (never from its name), and why.

Every layer that needs to know "is this a seq2seq model, a VLM or a causal LM?" asks `detect_kind`:
the loader picks the transformers auto class from it, LoRA picks its task type from it, the data
layer picks the seq2seq processor from it, and preflight checks the template against it.

The decision reads transformers' own auto-class mappings, so a model transformers files under
image-text-to-text (Gemma-3 4B+, Qwen2-VL, LLaVA) stays a VLM, and a model whose config says
`is_encoder_decoder` (T5, BART) loads as seq2seq.
"""

from dataclasses import dataclass, replace
from typing import Any, Literal

from lmforge.errors import ModelError

Kind = Literal["causal_lm", "seq2seq_lm", "image_text_to_text", "audio_text", "reward_model"]
AUTO_CLASSES = ("AutoModelForCausalLM", "AutoModelForSeq2SeqLM", "AutoModelForImageTextToText",
                "AutoModelForMultimodalLM")

# Composite "omni" checkpoints: the trainable text generator is one sub-model of the whole.
COMPOSITE_SUBMODULES = {"qwen2_5_omni": "thinker", "qwen3_omni_moe": "thinker"}
# The peft task type that fits each kind; VLMs and audio LMs generate text causally.
PEFT_TASK_TYPES: dict[Kind, str] = {
    "causal_lm": "CAUSAL_LM", "seq2seq_lm": "SEQ_2_SEQ_LM",
    "image_text_to_text": "CAUSAL_LM", "audio_text": "CAUSAL_LM", "reward_model": "SEQ_CLS",
}
_KIND_OF_AUTO_CLASS: dict[str, Kind] = {
    "AutoModelForCausalLM": "causal_lm", "AutoModelForSeq2SeqLM": "seq2seq_lm",
    "AutoModelForImageTextToText": "image_text_to_text", "AutoModelForMultimodalLM": "audio_text",
}


@dataclass(frozen=True)
class ModelKind:
    kind: Kind
    auto_class: str  # the transformers auto class that loads it
    model_type: str
    reason: str  # one line: why this class was chosen
    submodule: str | None = None  # keep only this sub-model of a composite checkpoint

    @property
    def is_seq2seq(self) -> bool:
        return self.kind == "seq2seq_lm"

    @property
    def is_multimodal(self) -> bool:
        return self.kind in ("image_text_to_text", "audio_text")

    @property
    def peft_task_type(self) -> str:
        return PEFT_TASK_TYPES[self.kind]

    @property
    def architecture(self) -> str:
        """The concrete class name transformers maps this config to (for messages)."""
        return _mapped_class_name(self.auto_class, self.model_type) or self.model_type

    def describe(self) -> str:
        words = {"causal_lm": "a decoder-only (causal) language model", "seq2seq_lm": "an encoder-decoder model",
                 "image_text_to_text": "a vision-language model", "audio_text": "an audio-text model",
                 "reward_model": "a reward model (the base with a scalar head)"}
        return words[self.kind]


def _mappings() -> dict[str, dict[str, str]]:
    from transformers.models.auto import modeling_auto as auto

    return {
        "AutoModelForImageTextToText": auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
        "AutoModelForMultimodalLM": auto.MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES,
        "AutoModelForSeq2SeqLM": auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
        "AutoModelForCausalLM": auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    }


def _mapped_class_name(auto_class: str, model_type: str) -> str | None:
    return _mappings().get(auto_class, {}).get(model_type)


def _remote_auto_classes(config: Any) -> list[str]:
    """Auto classes a remote-code checkpoint declares in its `auto_map`."""
    return [name for name in (getattr(config, "auto_map", None) or {}) if name in AUTO_CLASSES]


def detect_kind(config: Any, model_class: str = "auto") -> ModelKind:
    """The kind of the checkpoint whose config is `config`; `model_class` (not "auto") overrides."""
    model_type = getattr(config, "model_type", "") or ""
    if model_class != "auto":
        if model_class not in AUTO_CLASSES:
            raise ModelError(f"`model_class: {model_class}` is not one of: auto, {', '.join(AUTO_CLASSES)}")
        return ModelKind(_KIND_OF_AUTO_CLASS[model_class], model_class, model_type,
                         f"`model_class: {model_class}` set in the config")
    maps = _mappings()
    encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))
    remote = _remote_auto_classes(config)
    if model_type in maps["AutoModelForImageTextToText"]:
        return ModelKind("image_text_to_text", "AutoModelForImageTextToText", model_type,
                         f"model_type `{model_type}` is an image-text-to-text architecture in transformers")
    if "AutoModelForImageTextToText" in remote:  # Kimi-VL, dots.ocr: served by the processor-native plugin
        return ModelKind("image_text_to_text", "AutoModelForImageTextToText", model_type,
                         f"the checkpoint's own code (config.json auto_map) is an image-text-to-text model "
                         f"({config.auto_map['AutoModelForImageTextToText']})")
    if model_type in COMPOSITE_SUBMODULES:
        sub = COMPOSITE_SUBMODULES[model_type]
        return ModelKind("audio_text", "AutoModelForMultimodalLM", model_type,
                         f"model_type `{model_type}` is a composite omni model; its `{sub}` generates text",
                         submodule=sub)
    if model_type in maps["AutoModelForMultimodalLM"] and not encoder_decoder:
        return ModelKind("audio_text", "AutoModelForMultimodalLM", model_type,
                         f"model_type `{model_type}` is an audio-text architecture in transformers")
    if encoder_decoder and (model_type in maps["AutoModelForSeq2SeqLM"] or "AutoModelForSeq2SeqLM" in remote):
        return ModelKind("seq2seq_lm", "AutoModelForSeq2SeqLM", model_type,
                         f"the config of model_type `{model_type}` says is_encoder_decoder")
    # A decoder-only remote-code model may also list AutoModelForSeq2SeqLM (ChatGLM does);
    # `is_encoder_decoder` is the config's own word, so it decides.
    if model_type in maps["AutoModelForCausalLM"] or "AutoModelForCausalLM" in remote:
        return ModelKind("causal_lm", "AutoModelForCausalLM", model_type,
                         f"model_type `{model_type}` is a decoder-only language model")
    raise ModelError(
        f"model_type `{model_type}` has no text-generation class in transformers (causal LM, seq2seq LM, "
        "image-text-to-text or audio-text); if it needs the checkpoint's own code set `trust_remote_code: true`, "
        "else set `model_class:` to the auto class that loads it")


def reward_kind(base: ModelKind) -> ModelKind:
    """`stage: rm` loads the base as `*ForSequenceClassification` (a vision/audio-language model with the head of
    `model/reward_head.py`); LoRA then trains as SEQ_CLS (head included)."""
    if base.kind != "causal_lm" and not base.is_multimodal:
        raise ModelError(f"`stage: rm` needs a decoder-only or vision/audio-language model; {base.architecture} "
                         f"is {base.describe()}")
    return replace(base, kind="reward_model", auto_class="AutoModelForSequenceClassification",
                   reason=f"stage rm: {base.model_type} with a scalar value head")
