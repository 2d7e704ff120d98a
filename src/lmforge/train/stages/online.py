"""What the online RL stages (grpo, rloo, ppo) share: prompt data, rewards (the reward model loaded once), and
for grpo and rloo trl's GRPOTrainer / RLOOTrainer fed with lmforge's rendering.

Prompts are rendered by the run's template with its generation prompt (`data/prompts.py`), so the policy
is asked exactly as `lmforge chat` asks it; the rendered text already holds every special token the
template writes, so the trainer tokenizes it without adding any (`RenderedPrompts`). Rollouts end at the
template's end-of-turn tokens. The rewards are lmforge's (`train/rewards`), each recorded for
`rollout_samples.jsonl`. With a new LoRA adapter the reference is the adapter-disabled base. A vision-language
model's prompts keep their images, handed to trl as it takes them (`train/media_prompts.py`).
"""

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmforge.config import LmforgeConfig
from lmforge.data.prompts import prompt_columns, prompt_converter, prompt_media_converter
from lmforge.data.report import DataReport
from lmforge.data.stage_data import RowKind, StageData, TokenizeContext
from lmforge.data.templates.select import run_template
from lmforge.train.rewards import build_rewards
from lmforge.train.stages.online_checks import DEFAULT_BETA

if TYPE_CHECKING:
    from lmforge.data.dataset import PreparedData

PROMPTS = RowKind("prompts", False, prompt_converter, prompt_media_converter)


def prompts_to_columns(items: list[Any], ctx: TokenizeContext, report: DataReport) -> dict[str, list[Any]]:
    return prompt_columns(items, ctx.template, ctx.tokenizer, ctx.data.enable_thinking, report)


ONLINE = StageData(PROMPTS, prompts_to_columns, media=True, media_in_columns=True)

SAMPLING_KEYS = ("temperature", "top_p", "top_k", "repetition_penalty")
# What trl logs that a user reads: trainer_log.jsonl keeps these (prefixes end with "/"), the plots draw some.
LOGGED = ("reward", "reward_std", "rewards/", "kl", "kl_coef", "entropy", "clip_ratio", "clip_ratio/", "completions/",
          "frac_reward_zero_std", "num_tokens", "step_time")
PLOTS = ("loss", "reward", "kl", "completions/mean_length", "entropy")


@functools.cache
def trainer_class(algorithm: str) -> type:
    """trl's trainer for `algorithm`, reading prompts lmforge has rendered."""
    # trl and torch load when a stage trains, not when it is looked up (`lmforge check`)
    from trl import GRPOTrainer, RLOOTrainer

    from lmforge.train.media_prompts import MediaPrompts, prompt_text

    base = {"grpo": GRPOTrainer, "rloo": RLOOTrainer}[algorithm]

    class RenderedPrompts(base):  # type: ignore[misc, valid-type]
        """The prompts are the template's full rendering (special tokens written as text): tokenize them as
        they are. trl would add the tokenizer's own special tokens (a second BOS on Llama 3). Image prompts
        (`media` set) go to trl in the form it takes."""

        media: MediaPrompts | None = None

        def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
            return super()._generate_and_score_completions(self.media.trl_rows(inputs) if self.media else inputs)

        def _tokenize_prompts(self, prompts: list[Any]) -> tuple[list[list[int]], Any, dict[str, Any]]:
            if self.media is not None:
                return self.media.tokenize(prompts)
            return self.processing_class(text=prompts, add_special_tokens=False)["input_ids"], None, {}

        def _calculate_rewards(self, inputs: list[dict[str, Any]], prompts: list[Any], completions: list[Any],
                               completion_ids_list: list[list[int]]) -> Any:
            texts = [prompt if isinstance(prompt, str) else prompt_text(prompt) for prompt in prompts]
            return super()._calculate_rewards(inputs, texts, completions, completion_ids_list)

    RenderedPrompts.__name__ = RenderedPrompts.__qualname__ = f"Lmforge{base.__name__}"
    return RenderedPrompts


def trainer_args(cfg: LmforgeConfig, algorithm: str, kwargs: dict[str, Any], weights: list[float],
                 chat_template: str | None = None) -> Any:
    """GRPOConfig / RLOOConfig from the run's keys. Rollouts sample with the generation keys the user set.
    `chat_template`: what trl's processor calls render image prompts with (`MediaPrompts.trl_chat_template`:
    the prompts are rendered already)."""
    from trl import GRPOConfig, RLOOConfig

    rl, generation = cfg.rl, cfg.generation
    sampling = {key: getattr(generation, key) for key in SAMPLING_KEYS if key in generation.model_fields_set}
    common = dict(num_generations=rl.num_generations, beta=DEFAULT_BETA[algorithm] if rl.beta is None else rl.beta,
                  max_completion_length=rl.max_completion_length or generation.max_new_tokens,
                  epsilon=rl.epsilon, epsilon_high=rl.epsilon_high, num_iterations=rl.num_iterations,
                  mask_truncated_completions=rl.mask_truncated_completions, reward_weights=weights,
                  steps_per_generation=rl.steps_per_rollout * (cfg.training.gradient_accumulation_steps or 1),
                  log_completions=False, **sampling)
    if chat_template:
        common["chat_template_kwargs"] = {"chat_template": chat_template}
    if rl.use_vllm:  # preflight checked CUDA and vLLM; colocate: vLLM shares the training process and GPU
        common.update(use_vllm=True, vllm_mode="colocate")
        if "vllm_gpu_util" in generation.model_fields_set:
            common["vllm_gpu_memory_utilization"] = generation.vllm_gpu_util
    if algorithm == "grpo":
        return GRPOConfig(**kwargs, **common, loss_type=rl.loss_type, scale_rewards=rl.scale_rewards)
    return RLOOConfig(**kwargs, **common, normalize_advantages=rl.normalize_advantages)


def reward_model_of(cfg: LmforgeConfig, tokenizer: Any, device: Any) -> Any:
    if not cfg.rl.reward_model:
        return None
    import torch

    from lmforge.model.quantization import quantization_config, quantized_device_map
    from lmforge.train.rewards.model import reward_model_reward

    args = cfg.model.model_copy(update={"quantization_bit": cfg.rl.reward_model_quantization_bit})
    # the score head stays in full precision: one output row, its trained weights come with the rm adapter
    quantization = quantization_config(args, torch.float32, keep=["score", "classifier"])
    loading = None if quantization is None else {"quantization_config": quantization,
                                                 "device_map": quantized_device_map(args)}
    return reward_model_reward(cfg.rl.reward_model, tokenizer, dtype=torch.float32, device=device,
                               trust_remote_code=cfg.model.trust_remote_code,
                               adapters=cfg.rl.reward_model_adapters or [], loading=loading)


def fresh_adapter(cfg: LmforgeConfig) -> bool:
    """A LoRA adapter that starts as a no-op (B = 0): disabling it gives back the starting policy."""
    ft = cfg.finetuning
    resumed = bool(cfg.model.adapter_name_or_path) and not ft.create_new_adapter
    return ft.finetuning_type == "lora" and not resumed and not ft.pissa_init


def build_online_trainer(algorithm: str, cfg: LmforgeConfig, model: Any, tokenizer: Any, prepared: "PreparedData",
                         kwargs: dict[str, Any]) -> Any:
    from lmforge.data.templates.encoding import stop_token_ids
    from lmforge.train.adaptive_kl import AdaptiveKl
    from lmforge.train.media_prompts import media_prompts
    from lmforge.train.rollouts import RolloutLog

    template = run_template(cfg.model, tokenizer, preserve_thinking=cfg.data.preserve_thinking)
    # Rollouts end where a chat answer ends (trl stops at the model's generation-config eos ids)
    model.generation_config.eos_token_id = stop_token_ids(template, tokenizer)
    weights = list(cfg.rl.reward_weights or [1.0] * (len(cfg.rl.reward_funcs or []) + bool(cfg.rl.reward_model)))
    media = media_prompts(prepared.collator)
    args = trainer_args(cfg, algorithm, kwargs, weights, chat_template=media.trl_chat_template() if media else None)
    rewards = build_rewards(cfg.rl, template, reward_model_of(cfg, tokenizer, args.device))
    rollouts = RolloutLog(Path(kwargs["output_dir"]), cfg.rl.rollout_log_steps, cfg.rl.rollout_log_samples, weights)
    trainer = trainer_class(algorithm)(
        model=model, reward_funcs=[rollouts.record(reward).func for reward in rewards], args=args,
        train_dataset=prepared.train, eval_dataset=prepared.evaluation,
        processing_class=media.processor if media else tokenizer)  # LoRA+: the runner
    trainer.media = media
    peft_config = getattr(trainer.model, "peft_config", {})
    if "ref" in peft_config and fresh_adapter(cfg):
        # trl copies the adapter as the reference; a new adapter is a no-op, so the adapter-disabled base is
        # the same reference without a second adapter in every layer (trl disables adapters when there is no copy)
        trainer.model.delete_adapter("ref")
    trainer.add_callback(rollouts)
    if cfg.rl.ppo_target is not None:  # checked: rloo/ppo with a KL term
        per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
        trainer.add_callback(AdaptiveKl(trainer, cfg.rl.ppo_target, per_step))
    return trainer
