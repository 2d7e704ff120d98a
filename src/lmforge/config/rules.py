"""Cross-field rules: combinations of keys that are each valid alone but not together."""

from collections.abc import Callable

from lmforge.config.groups import FLASH_ATTN_MEANS, LmforgeConfig
from lmforge.errors import ConfigError

SUPPORTED_STAGES = ("sft",)


def _stage_supported(cfg: LmforgeConfig) -> str | None:
    if cfg.finetuning.stage not in SUPPORTED_STAGES:
        return (f"`stage: {cfg.finetuning.stage}` is not supported by lmforge yet; "
                f"supported: {', '.join(SUPPORTED_STAGES)}")
    return None


LORA_ONLY_KEYS = ("lora_task_type", "use_dora", "use_rslora", "pissa_init", "pissa_iter", "loraplus_lr_ratio",
                  "additional_target", "create_new_adapter")
FREEZE_ONLY_KEYS = ("freeze_trainable_layers", "freeze_trainable_modules", "freeze_extra_modules")


def _method_keys_match(cfg: LmforgeConfig) -> str | None:
    """A LoRA or freeze option set for another method would be silently ignored: say so instead."""
    ft = cfg.finetuning
    own = {"lora": LORA_ONLY_KEYS, "freeze": FREEZE_ONLY_KEYS}
    for method, keys in own.items():
        stray = [key for key in keys if key in ft.model_fields_set]
        if stray and ft.finetuning_type != method:
            return (f"{', '.join(f'`{k}`' for k in stray)} only apply to `finetuning_type: {method}` "
                    f"(got `{ft.finetuning_type}`): remove them or switch the method")
    return None


def _quantization_needs_lora(cfg: LmforgeConfig) -> str | None:
    if cfg.model.quantization_bit and cfg.finetuning.finetuning_type != "lora":
        return (f"`quantization_bit: {cfg.model.quantization_bit}` (QLoRA) trains LoRA adapters on frozen quantized "
                f"weights: set `finetuning_type: lora` (got `{cfg.finetuning.finetuning_type}`)")
    return None


def _pissa_converted(cfg: LmforgeConfig) -> str | None:
    if cfg.finetuning.pissa_init and not cfg.finetuning.pissa_convert:
        return ("`pissa_convert: false` would save an adapter that only works on PiSSA's residual base model, "
                "which is not saved: remove the key (lmforge saves a plain LoRA that fits the original model)")
    return None


def _one_attention_choice(cfg: LmforgeConfig) -> str | None:
    flash, attn = cfg.model.flash_attn, cfg.model.attn_implementation
    if flash and attn != "auto" and FLASH_ATTN_MEANS[flash] != attn:
        return (f"`flash_attn: {flash}` and `attn_implementation: {attn}` disagree: set only one "
                "(flash_attn is LLaMA-Factory's name for the same choice)")
    return None


def _adapter_needs_lora(cfg: LmforgeConfig) -> str | None:
    if cfg.model.adapter_name_or_path and cfg.finetuning.finetuning_type != "lora":
        return (f"`adapter_name_or_path` is only valid with `finetuning_type: lora` "
                f"(got `{cfg.finetuning.finetuning_type}`): merge the adapter first with `lmforge export`")
    return None


def _one_half_precision(cfg: LmforgeConfig) -> str | None:
    if cfg.training.bf16 and cfg.training.fp16:
        return "`bf16` and `fp16` cannot both be true: pick one"
    return None


def _one_eval_source(cfg: LmforgeConfig) -> str | None:
    if cfg.data.val_size and cfg.data.eval_dataset:
        return "`val_size` and `eval_dataset` cannot both be set: hold out a share or name an eval dataset"
    return None


def _val_size_is_share_or_count(cfg: LmforgeConfig) -> str | None:
    size = cfg.data.val_size
    if size >= 1 and size != int(size):
        return f"`val_size: {size}` must be a share below 1 or a whole row count"
    return None


def _safetensors_only(cfg: LmforgeConfig) -> str | None:
    if cfg.export.export_legacy_format:
        return "`export_legacy_format: true` (.bin files) is not supported: exports are safetensors"
    return None


RULES: list[Callable[[LmforgeConfig], str | None]] = [
    _stage_supported,
    _method_keys_match,
    _quantization_needs_lora,
    _pissa_converted,
    _one_attention_choice,
    _adapter_needs_lora,
    _one_half_precision,
    _one_eval_source,
    _val_size_is_share_or_count,
    _safetensors_only,
]


def check_rules(cfg: LmforgeConfig) -> None:
    where = cfg.source or "config"
    problems = [message for rule in RULES if (message := rule(cfg))]
    if problems:
        raise ConfigError(f"invalid configuration in {where}:\n  " + "\n  ".join(problems))
