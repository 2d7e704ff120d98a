"""Does the configuration fit the model? Checked on the model's skeleton before any weight loads.

The skeleton is the model built from its config on the `meta` device (no memory, no weights), so a
wrong LoRA task type, a target or freeze module name the model does not have, or a template that does not
fit the checkpoint (`model/template_fit.py`) fails in seconds with the fix, from `lmforge check` as well as
`lmforge train`.
"""

from typing import Any, Literal

import torch
import transformers

from lmforge.config.groups import FinetuningGroup, ModelGroup
from lmforge.data.packable_decoder import check_packable_decoder
from lmforge.data.templates.template import Template
from lmforge.errors import ModelError
from lmforge.model.adapter_fit import check_adapter_fits
from lmforge.model.components import model_components
from lmforge.model.freeze import apply_freeze
from lmforge.model.kind import ModelKind, detect_kind
from lmforge.model.loading import load_model_config, model_path
from lmforge.model.mixture_of_depths import check_mixture_of_depths_fits, check_no_mixture_of_depths
from lmforge.model.quantization import check_quantization_supported
from lmforge.model.shift_attention import check_shift_attention_fits
from lmforge.model.targets import check_freeze_flags
from lmforge.model.template_fit import check_template_fit


def model_skeleton(config: Any, kind: ModelKind, *, trust_remote_code: bool) -> torch.nn.Module:
    """The model's modules without weights (meta device)."""
    with torch.device("meta"):
        model = getattr(transformers, kind.auto_class).from_config(config, trust_remote_code=trust_remote_code)
    return getattr(model, kind.submodule) if kind.submodule else model


def check_model_fit(args: ModelGroup, ft: FinetuningGroup, template: Template | None,
                    command: Literal["train", "chat", "eval", "export", "check"], *,
                    packs_examples: str | None = None, fsdp_wrapped: tuple[str, ...] = ()) -> ModelKind:
    """Everything about the model that can be checked from its config; returns its kind. `ft` matters only
    when the command trains; `packs_examples`: the key by which the run puts several examples in a row
    (the stage's `packing`, or `padding_free`), None when it does not; `fsdp_wrapped`: the layer classes FSDP is
    told to wrap (`fsdp_transformer_layer_cls_to_wrap`)."""
    training = command in ("train", "check")
    if training:
        check_quantization_supported(args)
    path = model_path(args)
    config = load_model_config(args, path)
    kind = detect_kind(config, args.model_class)
    if training and packs_examples:
        check_packable_decoder(config, packs_examples)
    if template is not None:  # `template: auto` is the checkpoint's own, resolved from the tokenizer later
        check_template_fit(template, config, kind, path, where=args.model_name_or_path or path,
                           model_name_or_path=args.model_name_or_path,
                           added_tokens=[*(args.add_tokens or []), *(args.add_special_tokens or [])],
                           revision=args.model_revision, cache_dir=args.cache_dir,
                           forced=args.model_class != "auto")
    adapters = args.adapter_paths()
    skeleton = model_skeleton(config, kind, trust_remote_code=args.trust_remote_code) if adapters else None
    for adapter in adapters:
        check_adapter_fits(skeleton, adapter, args.model_name_or_path or path)
    where = args.model_name_or_path or path
    if not training:
        check_no_mixture_of_depths(config, where)
        return kind
    check_mixture_of_depths_fits(config, args.mixture_of_depths, where, method=ft.finetuning_type,
                                 attention=args.attention)
    # peft loads only for a run that trains: serving or evaluating a base model never needs it (BENCHMARKS.md,
    # "One-process DeepSpeed, and a base model's chat")
    from lmforge.model.lora import build_lora_config, check_task_type
    from lmforge.model.oft import build_oft_config

    method = ft.finetuning_type
    if method == "lora":
        check_task_type(kind, ft)
    resumes = bool(adapters) and not ft.create_new_adapter
    if kind.is_multimodal:  # the freeze_* keys against the parts the model has, for every finetuning_type
        skeleton = skeleton or model_skeleton(config, kind, trust_remote_code=args.trust_remote_code)
        check_freeze_flags(model_components(skeleton), ft, kind.architecture)
    if args.shift_attn:
        skeleton = skeleton or model_skeleton(config, kind, trust_remote_code=args.trust_remote_code)
        check_shift_attention_fits(skeleton, args.model_name_or_path or path)
    if fsdp_wrapped:
        skeleton = skeleton or model_skeleton(config, kind, trust_remote_code=args.trust_remote_code)
        check_fsdp_wrapped_layers(skeleton, fsdp_wrapped, args.model_name_or_path or path)
    if (method == "lora" and not resumes) or method in ("freeze", "oft"):
        skeleton = skeleton or model_skeleton(config, kind, trust_remote_code=args.trust_remote_code)
        if method == "lora":
            build_lora_config(skeleton, ft, kind)
        elif method == "oft":
            build_oft_config(skeleton, ft, kind)
        else:
            apply_freeze(skeleton, ft)
    return kind


def check_fsdp_wrapped_layers(skeleton: Any, wrapped: tuple[str, ...], where: str) -> None:
    """FSDP wraps the named layer classes; one the model does not have fails in every process after loading."""
    present = {type(module).__name__ for module in skeleton.modules()}
    if missing := [name for name in wrapped if name not in present]:
        layers = sorted(set(getattr(skeleton, "_no_split_modules", None) or []) & present)
        raise ModelError(f"`fsdp_transformer_layer_cls_to_wrap`: {where} has no {', '.join(missing)} layer"
                         + (f"; its layers are {', '.join(layers)}" if layers else "")
                         + " (leave the key out and transformers wraps the model's own layers)")
