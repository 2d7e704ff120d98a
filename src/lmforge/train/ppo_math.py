"""The arithmetic of PPO with a value model, as LLaMA-Factory's PPO runs it (trl's PPOTrainer of the 0.8 line,
which it subclasses): per-token rewards, generalised advantage estimation, the clipped losses, and the
running score statistics of `ppo_score_norm`.

Every tensor is (sequences, positions); `mask` is 1 on the response tokens. Positions outside the mask hold
zeros in rewards and values, as trl's did, so GAE runs over the padded width unchanged.
"""

from dataclasses import dataclass

import torch

GAMMA = 1.0  # discount (trl's default, which LLaMA-Factory keeps)
LAMBDA = 0.95  # GAE lambda
CLIP_RANGE = 0.2  # policy ratio clipped to 1 +- this
CLIP_RANGE_VALUE = 0.2  # value prediction clipped to old value +- this
VALUE_COEF = 0.1  # weight of the value loss in the total
RATIO_THRESHOLD = 10.0  # a mini-batch whose mean ratio exceeds this is skipped (its loss times 0)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum()


def masked_var(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Unbiased variance over the masked entries (Bessel's correction, as trl's)."""
    centered = values - masked_mean(values, mask)
    count = mask.sum()
    return masked_mean(centered**2, mask) * count / (count - 1)


def masked_whiten(values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """(values - mean) / std over the masked entries; `shift_mean=False` adds the mean back (only the spread
    is normalised)."""
    mean = masked_mean(values, mask)
    whitened = (values - mean) * torch.rsqrt(masked_var(values, mask) + 1e-8)
    return whitened if shift_mean else whitened + mean


def token_rewards(scores: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor,
                  kl_coef: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards: -kl_coef * (logp - ref_logp) on each response token, the sequence's score added on its
    last response token. Returns (rewards, per-token KL)."""
    kl = (logprobs - ref_logprobs) * mask
    rewards = -kl_coef * kl
    last = mask.shape[1] - 1 - mask.flip(1).long().argmax(1)  # each row's last response position
    rewards[torch.arange(len(scores)), last] += scores.to(rewards.dtype)
    return rewards, kl


def advantages_and_returns(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor,
                           whiten_rewards: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE (gamma 1, lambda 0.95) over the positions; returns = advantages + values; the advantages are then
    whitened over the response tokens. `whiten_rewards` (`ppo_whiten_rewards`): the per-token rewards are
    whitened first without shifting their mean."""
    values, rewards = values * mask, rewards * mask
    if whiten_rewards:
        rewards = masked_whiten(rewards, mask, shift_mean=False)
    width = rewards.shape[1]
    running = torch.zeros_like(rewards[:, 0])
    backwards = []
    for t in reversed(range(width)):
        next_values = values[:, t + 1] if t < width - 1 else torch.zeros_like(running)
        delta = rewards[:, t] + GAMMA * next_values - values[:, t]
        running = delta + GAMMA * LAMBDA * running
        backwards.append(running)
    advantages = torch.stack(backwards[::-1], dim=1)
    returns = advantages + values
    return masked_whiten(advantages, mask).detach(), returns.detach()


def policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate: mean over response tokens of max(-A r, -A clip(r, 0.8, 1.2)). Returns
    (loss, share of tokens clipped, mean ratio)."""
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - CLIP_RANGE, 1.0 + CLIP_RANGE)
    loss = masked_mean(torch.max(unclipped, clipped), mask)
    return loss, masked_mean((clipped > unclipped).float(), mask), masked_mean(ratio, mask)


def value_loss(predicted: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
               mask: torch.Tensor) -> torch.Tensor:
    """0.5 x mean over response tokens of the larger squared error of the prediction and of the prediction
    clipped to the old value +- 0.2."""
    clipped = torch.clamp(predicted, old_values - CLIP_RANGE_VALUE, old_values + CLIP_RANGE_VALUE)
    return 0.5 * masked_mean(torch.max((predicted - returns) ** 2, (clipped - returns) ** 2), mask)


@dataclass
class RunningMoments:
    """`ppo_score_norm`: the running mean and std of every score seen (Chan et al.'s parallel update), by which
    each new batch of scores is normalised."""

    mean: float = 0.0
    var: float = 1.0
    count: float = 1e-24

    def normalise(self, scores: torch.Tensor, every: torch.Tensor | None = None) -> torch.Tensor:
        """Update with `every` (all processes' scores; default `scores`), then (scores - mean) / (std + eps)."""
        every = scores if every is None else every
        batch_var, batch_mean = torch.var_mean(every.float(), unbiased=False)
        n, total = every.numel(), self.count + every.numel()
        delta = batch_mean.item() - self.mean
        summed = self.var * self.count + delta**2 * self.count * n / total + batch_var.item() * n
        self.mean += delta * n / total
        self.var, self.count = summed / total, total
        std = (self.var * total / (total - 1)) ** 0.5
        return (scores - self.mean) / (std + torch.finfo(scores.dtype).eps)
