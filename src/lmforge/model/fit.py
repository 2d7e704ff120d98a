"""Does the configuration fit the model? Checked on the model's skeleton before any weight loads.

The skeleton is the model built from its config on the `meta` device (no memory, no weights), so a
wrong LoRA task type, a target or freeze module name the model does not have, or a template of the
wrong modality fails in seconds with the fix, from `lmforge check` as well as `lmforge train`.
"""

from typing import Any, Literal

import torch
import transformers

from lmforge.config import LmforgeConfig
from lmforge.data.templates.registry import list_templates
from lmforge.data.templates.template import Template
from lmforge.errors import TemplateError
from lmforge.model.components import model_components
from lmforge.model.freeze import apply_freeze
from lmforge.model.kind import ModelKind, detect_kind
from lmforge.model.loading import load_model_config, model_path
from lmforge.model.lora import build_lora_config, check_task_type
from lmforge.model.quantization import check_quantization_supported
from lmforge.model.targets import check_freeze_flags


def model_skeleton(cfg: LmforgeConfig, config: Any, kind: ModelKind) -> torch.nn.Module:
    """The model's modules without weights (meta device)."""
    with torch.device("meta"):
        model = getattr(transformers, kind.auto_class).from_config(
            config, trust_remote_code=cfg.model.trust_remote_code)
    return getattr(model, kind.submodule) if kind.submodule else model


def check_template_modality(template: Template, kind: ModelKind, where: str) -> None:
    """A multimodal template on a text-only checkpoint, or a text template on a VLM, fails with the fix."""
    if kind.is_multimodal and not template.multimodal:
        multimodal = sorted(t.name for t in list_templates() if t.multimodal)
        raise TemplateError(
            f"template `{template.name}` is a text template, but {where} is {kind.describe()} ({kind.architecture}: "
            f"{kind.reason}); its image/audio inputs would never reach it. Set `template:` to the family's "
            f"multimodal template (registered: {', '.join(multimodal) or 'none'})")
    if template.multimodal and not kind.is_multimodal:
        raise TemplateError(
            f"template `{template.name}` is a multimodal template, but {where} is {kind.describe()} "
            f"({kind.architecture}: {kind.reason}) without a vision or audio encoder. Set `template:` to the "
            "family's text template (e.g. Gemma-3 1B uses `gemma`, not `gemma3`; Qwen2 uses `qwen2`, not `qwen2_vl`)")


def check_model_fit(cfg: LmforgeConfig, template: Template | None, command: Literal["train", "chat", "export", "check"]
                    ) -> ModelKind:
    """Everything about the model that can be checked from its config; returns its kind."""
    training = command in ("train", "check")
    if training:
        check_quantization_supported(cfg)
    path = model_path(cfg)
    config = load_model_config(cfg, path)
    kind = detect_kind(config, cfg.model.model_class)
    if template is not None:  # `template: auto` is resolved from the tokenizer later
        check_template_modality(template, kind, cfg.model.model_name_or_path or path)
    if not training:
        return kind
    method = cfg.finetuning.finetuning_type
    if method == "lora":
        check_task_type(kind, cfg)
    resumes = bool(cfg.model.adapter_name_or_path) and not cfg.finetuning.create_new_adapter
    if kind.is_multimodal:  # the freeze_* keys against the parts the model has, for every finetuning_type
        check_freeze_flags(model_components(model_skeleton(cfg, config, kind)), cfg, kind.architecture)
    if (method == "lora" and not resumes) or method == "freeze":
        skeleton = model_skeleton(cfg, config, kind)
        if method == "lora":
            build_lora_config(skeleton, cfg, kind)
        else:
            apply_freeze(skeleton, cfg)
    return kind
