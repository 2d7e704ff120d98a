"""Cross-field rules: combinations of keys that are each valid alone but not together."""

from collections.abc import Callable

from lmforge.config.groups import LmforgeConfig
from lmforge.errors import ConfigError

SUPPORTED_STAGES = ("sft",)


def _stage_supported(cfg: LmforgeConfig) -> str | None:
    if cfg.finetuning.stage not in SUPPORTED_STAGES:
        return (f"`stage: {cfg.finetuning.stage}` is not supported by lmforge yet; "
                f"supported: {', '.join(SUPPORTED_STAGES)}")
    return None


def _finetuning_supported(cfg: LmforgeConfig) -> str | None:
    if cfg.finetuning.finetuning_type == "freeze":
        return "`finetuning_type: freeze` is not supported by lmforge yet; use `lora` or `full`"
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


def _quantized_export_is_safetensors(cfg: LmforgeConfig) -> str | None:
    if cfg.export.export_quantization_bit and cfg.export.export_legacy_format:
        return ("`export_quantization_bit` with `export_legacy_format: true`: bitsandbytes exports are saved as "
                "safetensors only; remove one of the two keys")
    return None


RULES: list[Callable[[LmforgeConfig], str | None]] = [
    _stage_supported,
    _finetuning_supported,
    _adapter_needs_lora,
    _one_half_precision,
    _one_eval_source,
    _val_size_is_share_or_count,
    _quantized_export_is_safetensors,
]


def check_rules(cfg: LmforgeConfig) -> None:
    where = cfg.source or "config"
    problems = [message for rule in RULES if (message := rule(cfg))]
    if problems:
        raise ConfigError(f"invalid configuration in {where}:\n  " + "\n  ".join(problems))
