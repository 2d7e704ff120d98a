"""Config rules of the stages trained by trl's DPOTrainer and KTOTrainer: what their constructors (trl 1.16)
would reject with a ValueError once the model is loaded, checked by preflight with the fix.

Each takes the config and returns the problem or None (`Stage.checks`). The dpo stage applies them only to
the losses DPOTrainer trains (orpo and simpo use lmforge's own trainer).
"""

from lmforge.config import LmforgeConfig

OUTPUT_HEAD = "lm_head"  # the output layer's name in (nearly) every causal LM; `lora_target: all` leaves it out


def no_lora_on_the_output_head(cfg: LmforgeConfig) -> str | None:
    """trl computes log-probabilities from `lm_head.weight` directly and refuses an adapter on it."""
    ft = cfg.finetuning
    if ft.finetuning_type != "lora" or OUTPUT_HEAD not in ft.lora_target:
        return None
    others = ",".join(target for target in ft.lora_target if target != OUTPUT_HEAD) or "all"
    return (f"`stage: {ft.stage}` cannot put LoRA on `{OUTPUT_HEAD}`: trl computes the log-probabilities from its "
            f"weight directly, so the adapter would never train; remove it from `lora_target` "
            f"(`lora_target: {others}`)")


def no_fused_liger_cross_entropy(cfg: LmforgeConfig) -> str | None:
    """trl keeps its own fused LM head, which liger's fused linear cross-entropy would replace."""
    training = cfg.training
    if not (training.use_liger_kernel and (training.liger_kernel_config or {}).get("fused_linear_cross_entropy")):
        return None
    return (f"`stage: {cfg.finetuning.stage}` cannot use liger's fused linear cross-entropy: trl computes the "
            "log-probabilities with its own fused LM head; set `fused_linear_cross_entropy: false` in "
            "`liger_kernel_config`")


PREFERENCE_TRAINER_CHECKS = (no_lora_on_the_output_head, no_fused_liger_cross_entropy)
