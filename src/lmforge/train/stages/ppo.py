"""ppo: PPO with a value model, LLaMA-Factory's `stage: ppo` (`train/ppo_trainer.py`).

The policy samples one completion per prompt with the generation keys; a reward model (`reward_model`, a
`stage: rm` output) and/or `reward_funcs` score it; a value head on the policy's backbone (trained with its
adapter) estimates the advantages (GAE) of a KL-penalised per-token reward against the reference (the
adapter-disabled base with LoRA, a frozen copy otherwise). LLaMA-Factory's keys keep their meaning:
`ppo_buffer_size`, `ppo_epochs`, `ppo_score_norm`, `ppo_target` (6.0 unless set), `ppo_whiten_rewards`; the KL
coefficient starts at `beta` (0.2 unless set).
"""

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmforge.config import LmforgeConfig
from lmforge.errors import ConfigError
from lmforge.train.stages import Stage, register_stage
from lmforge.train.stages.online import LOGGED, ONLINE, PLOTS
from lmforge.train.stages.online_checks import (
    DEFAULT_BETA,
    adaptive_kl_has_a_kl_term,
    completion_limit,
    has_rewards,
    known_rewards,
    no_reference_model_key,
    reference_from_checkpoint,
    reward_columns_present,
    reward_model_type_matches,
)

if TYPE_CHECKING:
    from lmforge.data.dataset import PreparedData

DEFAULT_TARGET = 6.0  # LLaMA-Factory's `ppo_target`: its PPO always adapts the KL coefficient


def kl_coefficient(cfg: LmforgeConfig) -> float:
    return DEFAULT_BETA["ppo"] if cfg.rl.beta is None else cfg.rl.beta


def needs_a_reward(cfg: LmforgeConfig) -> str | None:
    if has_rewards(cfg) is None:
        return None
    return ("`stage: ppo` scores completions with a reward model: add `reward_model: saves/<model>/rm` (the "
            "output_dir of a `stage: rm` run) and/or `reward_funcs`, or train with rules alone:\n"
            "    stage: grpo\n    reward_funcs: accuracy        # or format_think, length, path/to/file.py:fn\n"
            "    num_generations: 8")


def rollouts_with_generate(cfg: LmforgeConfig) -> str | None:
    if not cfg.rl.use_vllm:
        return None
    return ("`stage: ppo` samples its rollouts with transformers' generate, as LLaMA-Factory's PPO does: remove "
            "`use_vllm` (grpo and rloo can roll out in vLLM)")


def no_evaluation(cfg: LmforgeConfig) -> str | None:
    """PPO has no evaluation loss (LLaMA-Factory's PPO never evaluates)."""
    if not (cfg.data.eval_dataset or cfg.data.val_size):
        return None
    return ("`stage: ppo` trains on rollouts and has no evaluation: remove `eval_dataset` / `val_size` (the "
            "reward and KL of each step are logged in trainer_log.jsonl)")


def build_trainer(cfg: LmforgeConfig, model: Any, tokenizer: Any, prepared: "PreparedData",
                  kwargs: dict[str, Any], ref_model: Any = None) -> Any:
    from transformers import GenerationConfig, TrainingArguments

    from lmforge.data.templates.encoding import stop_token_ids
    from lmforge.data.templates.select import run_template
    from lmforge.train.media_prompts import media_prompts
    from lmforge.train.ppo_trainer import PpoSettings, PpoTrainer
    from lmforge.train.rewards import build_rewards
    from lmforge.train.rollouts import RolloutLog
    from lmforge.train.stages.online import reward_model_of

    if media_prompts(prepared.collator) is not None:
        raise ConfigError("`stage: ppo` rolls out text prompts; prompts with images train with `stage: grpo` or "
                          "`rloo`")
    rl, generation = cfg.rl, cfg.generation
    template = run_template(cfg.model, tokenizer, preserve_thinking=cfg.data.preserve_thinking)
    stops = stop_token_ids(template, tokenizer)
    model.generation_config.eos_token_id = stops
    per_device = kwargs.get("per_device_train_batch_size", 8)  # transformers' default
    accumulation = kwargs.get("gradient_accumulation_steps", 1)
    settings = PpoSettings(per_device, accumulation, rl.ppo_epochs, kl_coefficient(cfg),
                           rl.ppo_target or DEFAULT_TARGET, rl.ppo_score_norm, rl.ppo_whiten_rewards)
    # One Trainer step is one PPO step over a buffer of prompts; the trainer splits it into its mini-batches
    args = TrainingArguments(**{**kwargs, "per_device_train_batch_size": per_device * accumulation * rl.ppo_buffer_size,
                                "gradient_accumulation_steps": 1})
    weights = list(rl.reward_weights or [1.0] * (len(rl.reward_funcs or []) + bool(rl.reward_model)))
    rewards = build_rewards(rl, template, reward_model_of(cfg, tokenizer, args.device))
    rollouts = RolloutLog(Path(kwargs["output_dir"]), rl.rollout_log_steps, rl.rollout_log_samples, weights)
    sampling = GenerationConfig(
        do_sample=generation.do_sample, temperature=generation.temperature, top_p=generation.top_p,
        top_k=generation.top_k, num_beams=generation.num_beams, repetition_penalty=generation.repetition_penalty,
        length_penalty=generation.length_penalty, max_new_tokens=rl.max_completion_length or generation.max_new_tokens,
        eos_token_id=stops, pad_token_id=tokenizer.pad_token_id)
    trainer = PpoTrainer(model=model, settings=settings, generation=sampling, ref_model=ref_model,
                         rewards=[(rollouts.record(reward).func, weight) for reward, weight in zip(rewards, weights,
                                                                                                  strict=True)],
                         args=args, train_dataset=prepared.train, processing_class=tokenizer)
    trainer.add_callback(rollouts)
    return trainer


CHECKS = (needs_a_reward, known_rewards, completion_limit, no_reference_model_key, reference_from_checkpoint,
          reward_columns_present, reward_model_type_matches, adaptive_kl_has_a_kl_term, rollouts_with_generate,
          no_evaluation)
register_stage(Stage("ppo", ONLINE, build_trainer, needs_reference=lambda cfg: kl_coefficient(cfg) > 0,
                     checks=CHECKS, plots=PLOTS, logs=(*LOGGED, "policy_loss", "value_loss")))
