"""`stage: ppo`: PPO with a value model, as LLaMA-Factory runs it (trl's PPOTrainer of the 0.8 line; trl has
shipped no PPO trainer since 1.0, so lmforge has its own).

One Trainer step is one PPO step, as in LLaMA-Factory: the dataloader hands a buffer of prompts
(`ppo_buffer_size` x per_device_train_batch_size x gradient_accumulation_steps), the policy samples one
completion each with the generation keys, the rewards score them (the reward model's score, plus any
`reward_funcs`), and the buffer's experience is built with the policy, its value head and the reference
(`train/ppo_math.py`). Then `ppo_epochs` passes over the shuffled buffer, each in backward batches of
per_device_train_batch_size x gradient_accumulation_steps sequences, one optimizer step each: the Trainer
takes the last one (and steps the learning-rate schedule once per PPO step), the others are taken here.
After the step the KL coefficient moves toward `ppo_target`.
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import GenerationConfig, Trainer

from lmforge.data.prompts import PROMPT_COLUMN, PROMPT_IDS_COLUMN
from lmforge.model.value_head import ValueHead, attach_value_head, load_value_head, save_value_head, value_head_of
from lmforge.train import ppo_math
from lmforge.train.adaptive_kl import adapted_coefficient
from lmforge.train.rewards import RewardFunc


@dataclass(frozen=True)
class PpoSettings:
    mini_batch: int  # sequences per forward pass (per_device_train_batch_size)
    accumulation: int  # mini-batches per optimizer step (gradient_accumulation_steps)
    epochs: int  # ppo_epochs
    kl_coef: float  # the starting KL coefficient (`beta`); 0: no reference
    kl_target: float  # ppo_target
    score_norm: bool  # ppo_score_norm
    whiten_rewards: bool  # ppo_whiten_rewards


@dataclass
class Experience:
    """One buffer: prompt + completion ids (right-padded) and per position the old log-probabilities and values,
    the advantages, the returns and the response mask."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    mask: torch.Tensor
    logprobs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor


def sequence_rows(prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]], pad_id: int,
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Prompt + response ids right-padded; the mask marks the positions whose next token is a response token
    (where the model's log-probability of that token and the value before it are read)."""
    width = max(len(p) + len(r) for p, r in zip(prompts, responses, strict=True))
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(prompts), width), dtype=torch.long)
    mask = torch.zeros((len(prompts), width - 1))
    for row, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        length = len(prompt) + len(response)
        ids[row, :length] = torch.tensor(list(prompt) + list(response))
        attention[row, :length] = 1
        mask[row, len(prompt) - 1:length - 1] = 1
    return ids, attention, mask


def cut_at_stop(generated: torch.Tensor, stop_ids: set[int]) -> list[list[int]]:
    """Each generated row up to and including its first stop token (all of it when it has none)."""
    rows = []
    for row in generated.tolist():
        end = next((index + 1 for index, token in enumerate(row) if token in stop_ids), len(row))
        rows.append(row[:end])
    return rows


class PpoTrainer(Trainer):
    """PPO on a policy with a value head (added to the policy instance); `rewards`: (function, weight) pairs
    called as trl calls reward functions."""

    def __init__(self, *, model: Any, settings: PpoSettings, rewards: Sequence[tuple[RewardFunc, float]],
                 generation: GenerationConfig, ref_model: Any = None, **kwargs: Any) -> None:
        attach_value_head(model)
        super().__init__(model=model, data_collator=list, **kwargs)
        self.settings, self.rewards, self.generation = settings, list(rewards), generation
        # prepared as trl prepares its reference models: on the device and under the policy's mixed-precision
        # autocast (this instance's forward), so a fresh copy gives the policy's log-probabilities (zero KL)
        self.ref_model = (self.accelerator.prepare_model(ref_model.eval(), evaluation_mode=True)
                          if ref_model is not None else None)
        self.kl_coef = settings.kl_coef
        self.moments = ppo_math.RunningMoments()
        self.metrics: dict[str, list[float]] = defaultdict(list)

    # -- forward passes --------------------------------------------------------------------------------
    def _forward(self, model: Any, ids: torch.Tensor, attention: torch.Tensor, values: bool = True,
                 ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Log-probabilities of each next token, the value head's values and the logits, per position."""
        output = model(input_ids=ids, attention_mask=attention, output_hidden_states=values, use_cache=False)
        logits = output.logits[:, :-1].float()
        logprobs = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        if not values:  # the reference has no value head
            return logprobs, None, logits
        head: ValueHead = value_head_of(self.accelerator.unwrap_model(model))
        return logprobs, head(output.hidden_states[-1][:, :-1]), logits

    def _reference_logprobs(self, model: Any, ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        if self.ref_model is not None:
            return self._forward(self.ref_model, ids, attention, values=False)[0]
        with self.accelerator.unwrap_model(model).disable_adapter():  # LoRA/OFT: the adapter-disabled base
            return self._forward(model, ids, attention, values=False)[0]

    # -- rollouts and experience -----------------------------------------------------------------------
    @torch.no_grad()
    def _generate(self, model: Any, prompts: list[list[int]]) -> list[list[int]]:
        unwrapped = self.accelerator.unwrap_model(model)
        unwrapped.eval()
        pad = self.processing_class.pad_token_id
        responses: list[list[int]] = []
        for start in range(0, len(prompts), self.settings.mini_batch):
            chunk = prompts[start:start + self.settings.mini_batch]
            width = max(map(len, chunk))
            ids = torch.tensor([[pad] * (width - len(p)) + list(p) for p in chunk], device=self.args.device)
            attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in chunk], device=self.args.device)
            generated = unwrapped.generate(input_ids=ids, attention_mask=attention, generation_config=self.generation)
            stops = self.generation.eos_token_id
            responses += cut_at_stop(generated[:, width:].cpu(), set(stops if isinstance(stops, list) else [stops]))
        return responses

    def _scores(self, rows: list[dict[str, Any]], responses: list[list[int]]) -> torch.Tensor:
        """The weighted sum of the rewards per completion (a reward's None counts 0, as trl's nansum)."""
        completions = self.processing_class.batch_decode(responses, skip_special_tokens=True)
        columns = {key: [row[key] for row in rows] for key in rows[0] if key != PROMPT_COLUMN}
        total = torch.zeros(len(rows))
        for func, weight in self.rewards:
            values = func(prompts=[row[PROMPT_COLUMN] for row in rows], completions=completions,
                          completion_ids=responses, **columns)
            total += weight * torch.tensor([float("nan") if v is None else v for v in values]).nan_to_num(0.0)
        return total

    @torch.no_grad()
    def _experience(self, model: Any, rows: list[dict[str, Any]]) -> Experience:
        prompts = [row[PROMPT_IDS_COLUMN] for row in rows]
        responses = self._generate(model, prompts)
        scores = self._scores(rows, responses).to(self.args.device)
        self.metrics["reward"].append(self.accelerator.gather(scores).mean().item())
        if self.settings.score_norm:
            scores = self.moments.normalise(scores, self.accelerator.gather(scores))
        model.train()  # LLaMA-Factory's old log-probabilities and values are computed in training mode
        ids, attention, mask = (t.to(self.args.device) for t in sequence_rows(
            prompts, responses, self.processing_class.pad_token_id))
        parts = []
        for start in range(0, len(rows), self.settings.mini_batch):
            piece = slice(start, start + self.settings.mini_batch)
            logprobs, values, _ = self._forward(model, ids[piece], attention[piece])
            reference = (self._reference_logprobs(model, ids[piece], attention[piece]) if self.kl_coef
                         else logprobs)
            parts.append((logprobs, values, reference))
        logprobs, values, reference = (torch.cat(tensors) for tensors in zip(*parts, strict=True))
        rewards, kl = ppo_math.token_rewards(scores, logprobs, reference, mask, self.kl_coef)
        advantages, returns = ppo_math.advantages_and_returns(rewards, values, mask, self.settings.whiten_rewards)
        sequence_kl = self.accelerator.gather(kl.sum(1)).mean().item()
        self.metrics["kl"].append(sequence_kl)
        self.metrics["completions/mean_length"].append(sum(map(len, responses)) / len(responses))
        return Experience(ids, attention, mask, logprobs, values * mask, advantages, returns)

    # -- the PPO step ----------------------------------------------------------------------------------
    def _minibatch_loss(self, model: Any, batch: Experience, index: torch.Tensor) -> torch.Tensor:
        mask = batch.mask[index]
        logprobs, predicted, logits = self._forward(model, batch.input_ids[index], batch.attention_mask[index])
        policy, clipped, ratio = ppo_math.policy_loss(logprobs, batch.logprobs[index], batch.advantages[index], mask)
        value = ppo_math.value_loss(predicted, batch.values[index], batch.returns[index], mask)
        loss = policy + ppo_math.VALUE_COEF * value
        if ratio.item() > ppo_math.RATIO_THRESHOLD:  # trl's safeguard: a mini-batch this far off is skipped
            loss = loss * 0.0
        with torch.no_grad():
            entropy = torch.logsumexp(logits, -1) - (torch.softmax(logits, -1) * logits).sum(-1)
        for name, value_ in (("policy_loss", policy), ("value_loss", value), ("clip_ratio", clipped),
                             ("entropy", ppo_math.masked_mean(entropy, mask))):
            self.metrics[name].append(value_.item())
        return loss

    def _optimizer_step(self, model: Any) -> None:
        if self.args.max_grad_norm and self.args.max_grad_norm > 0:
            self.accelerator.clip_grad_norm_(model.parameters(), self.args.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad()

    def training_step(self, model: Any, inputs: list[dict[str, Any]], num_items_in_batch: Any = None,
                      ) -> torch.Tensor:
        """One PPO step on a buffer of prompts; returns the mean loss of its mini-batches."""
        batch = self._experience(model, inputs)
        settings, count = self.settings, len(inputs)
        backward = settings.mini_batch * settings.accumulation
        losses = []
        for epoch in range(settings.epochs):
            order = torch.randperm(count, device=self.args.device)
            starts = range(0, count, backward)
            for number, start in enumerate(starts):
                chosen = order[start:start + backward]
                for begin in range(0, len(chosen), settings.mini_batch):
                    loss = self._minibatch_loss(model, batch, chosen[begin:begin + settings.mini_batch])
                    self.accelerator.backward(loss / settings.accumulation)
                    losses.append(loss.detach())
                if epoch < settings.epochs - 1 or number < len(starts) - 1:  # the Trainer takes the last step
                    self._optimizer_step(model)
        if self.kl_coef:
            self.kl_coef = adapted_coefficient(self.kl_coef, self.metrics["kl"][-1], settings.kl_target,
                                               count * self.accelerator.num_processes)
        self.metrics["kl_coef"].append(self.kl_coef)
        return torch.stack(losses).mean()

    # -- logs, saving, resuming ------------------------------------------------------------------------
    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self.metrics:  # a training log: the means since the last one
            logs.update({name: sum(values) / len(values) for name, values in self.metrics.items()})
            self.metrics.clear()
        super().log(logs, start_time)

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        """The policy (adapter) as the Trainer saves it, without the value head, which goes beside it in
        value_head.safetensors (LLaMA-Factory's layout)."""
        unwrapped = self.accelerator.unwrap_model(self.model)
        head = value_head_of(unwrapped)
        del unwrapped.v_head  # the saved model is the policy alone (a full model would carry the head's weights)
        try:
            super().save_model(output_dir, _internal_call)
        finally:
            unwrapped.add_module("v_head", head)
        if self.args.should_save:
            folder = Path(output_dir or self.args.output_dir)
            folder.mkdir(parents=True, exist_ok=True)
            save_value_head(head, folder)

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any) -> Any:
        if isinstance(resume_from_checkpoint, str):  # the Trainer restores the policy and the optimizer
            load_value_head(value_head_of(self.accelerator.unwrap_model(self.model)), Path(resume_from_checkpoint))
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)
