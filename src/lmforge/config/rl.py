"""The online reinforcement-learning group (`stage: grpo`, `rloo`, `ppo`): trl's names, LLaMA-Factory's for ppo."""

from typing import Literal

from pydantic import Field, field_validator

from lmforge.config.groups_base import Group, split_list


class RlGroup(Group):
    """Online reinforcement learning (`stage: grpo`, `rloo`, `ppo`), under trl's names (LLaMA-Factory's `ppo_*`).

    grpo/rloo rollouts sample with the generation group's `temperature`, `top_p`, `top_k` and
    `repetition_penalty` when they are set, else with trl's defaults (1.0, 1.0, 0, 1.0): the chat defaults would
    narrow exploration. ppo rollouts sample with the generation group as it is, as LLaMA-Factory's do.
    """

    reward_funcs: list[str] | None = Field(
        None, description="Rewards, comma-separated: builtin names (docs/rl.md: accuracy, "
                          "accuracy_exact, accuracy_normalized, format_think, format_json, length, repetition) "
                          "or `path/to/file.py:function`.")
    reward_weights: list[float] | None = Field(
        None, description="One weight per reward (reward_funcs in order, then reward_model); default 1 each.")
    reward_model: str | None = Field(
        None, description="A sequence-classification checkpoint scoring prompt + completion (e.g. the output of "
                          "`stage: rm`, a full model or a LoRA adapter); added after reward_funcs.")
    reward_model_adapters: list[str] | None = Field(
        None, description="Reward-model adapters trained with `stage: rm` (SEQ_CLS, head included), merged in order "
                          "into `reward_model`, then the base they were trained on (comma-separated).")
    reward_model_quantization_bit: Literal[4, 8] | None = Field(
        None, description="Load the reward model in 4 or 8 bits (bitsandbytes, as `quantization_bit`; the score head "
                          "stays in full precision).")
    reward_model_type: Literal["full", "lora", "api"] = Field(
        "lora", description="LLaMA-Factory's: what `reward_model` is, a full checkpoint or a LoRA adapter (lmforge "
                            "tells them apart by the folder, which must agree); `api` is refused with the "
                            "replacement (a reward function that calls the API).")
    reward_answer_column: str = Field(
        "answer", description="Column the accuracy rewards compare against; a row without it uses its final "
                              "assistant message.")
    reward_length_target: int | None = Field(
        None, gt=0, description="`length` reward: the target answer length in words (1 at the target, falling "
                                "linearly to 0 at twice or none of it).")
    num_generations: int = Field(
        8, ge=2, description="Completions sampled per prompt (the group). per_device_train_batch_size x "
                             "gradient_accumulation_steps x processes must be a multiple of it.")
    max_completion_length: int | None = Field(
        None, gt=0, description="Most tokens per completion; default `max_new_tokens`.")
    beta: float | None = Field(
        None, ge=0, description="KL coefficient against the reference (the adapter-disabled base with LoRA, a "
                                "frozen copy otherwise); 0 loads no reference. Default: 0.0 for grpo, 0.05 "
                                "for rloo (trl's), 0.2 for ppo (the starting coefficient of LLaMA-Factory's PPO).")
    ppo_target: float | None = Field(
        None, gt=0, description="rloo/ppo: adapt the KL coefficient (starting at `beta`) toward this sequence-level "
                                "KL in nats, PPO's adaptive KL control; unset: 6.0 for ppo (LLaMA-Factory's), "
                                "for rloo `beta` stays fixed.")
    epsilon: float = Field(0.2, gt=0, description="Lower clipping bound of the policy ratio.")
    epsilon_high: float | None = Field(
        None, gt=0, description="Upper clipping bound (DAPO's clip-higher, e.g. 0.28); default `epsilon`.")
    num_iterations: int = Field(
        1, ge=1, description="grpo/rloo: optimisation passes over each generated batch (μ).")
    steps_per_rollout: int = Field(
        1, ge=1, description="Optimizer steps trained on each generated batch: trl's `steps_per_generation` is this "
                             "x gradient_accumulation_steps (later steps reuse the rollouts with an importance "
                             "ratio).")
    ppo_epochs: int = Field(
        4, ge=1, description="ppo: optimisation passes over each experience buffer (LLaMA-Factory's).")
    ppo_buffer_size: int = Field(
        1, ge=1, description="ppo: optimizer steps per experience buffer (the buffer holds this many x "
                             "per_device_train_batch_size x gradient_accumulation_steps prompts, one completion "
                             "each).")
    ppo_score_norm: bool = Field(
        False, description="ppo: normalise the scores by the running mean and std of all scores so far.")
    ppo_whiten_rewards: bool = Field(
        False, description="ppo: whiten the per-token rewards over the buffer's response tokens (std only, the "
                           "mean kept) before the advantages are estimated.")
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo"] = Field(
        "dapo", description="grpo: loss aggregation: per-sequence mean (grpo), a constant (dr_grpo), the tokens of "
                            "the accumulated batch (dapo), of the local batch (bnpo), or cispo / sapo.")
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group", description="grpo: divide advantages by the reward std of the group, of the batch, or not "
                             "(Dr. GRPO).")
    normalize_advantages: bool = Field(False, description="rloo: normalise advantages over the generation batch.")
    mask_truncated_completions: bool = Field(
        False, description="Leave completions cut at max_completion_length out of the loss (DAPO).")
    use_vllm: bool = Field(
        False, description="Rollouts in vLLM on the training GPU (trl's `use_vllm` with `vllm_mode: colocate`): "
                           "CUDA and `pip install vllm`; vLLM takes `vllm_gpu_util` of the GPU's memory when set, "
                           "else trl's 0.3. Off: transformers' generate.")
    rollout_log_steps: int = Field(
        10, ge=1, description="Every this many steps, a sample of completions with their rewards is appended to "
                              "output_dir/rollout_samples.jsonl.")
    rollout_log_samples: int = Field(4, ge=1, description="Completions written per rollout log.")

    _split = field_validator("reward_funcs", "reward_weights", "reward_model_adapters", mode="before")(split_list)

    @field_validator("reward_model_type")
    @classmethod
    def _no_api(cls, value: str) -> str:
        if value == "api":
            raise ValueError("LLaMA-Factory's `api` reward model scores over HTTP, which lmforge does not run as a "
                             "model: write a reward function that calls the API (`reward_funcs: "
                             "my_rewards.py:remote_score`, docs/rl.md) and remove `reward_model`/`reward_model_type`")
        return value
