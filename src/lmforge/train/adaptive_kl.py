"""LLaMA-Factory's `ppo_target`: PPO's adaptive KL controller (Ziegler et al. 2019), for `stage: ppo` (after each
PPO step, `adapted_coefficient`) and on trl's RLOO (after each log, `AdaptiveKl`).

The KL coefficient starts at `beta` and after each logged window is multiplied by
`1 + clip(kl / target - 1, -0.2, 0.2) * n / horizon` (horizon 10000, `n` the completions generated in the window):
it grows while the policy drifts past the target and shrinks while it stays under it. The KL compared is the
sequence-level one PPO uses (nats summed over a completion's tokens): trl logs the per-token mean `kl` and the
mean completion length, whose product is that sum averaged over the completions. The coefficient is the
trainer's public `beta`, which trl reads when it scores each generated batch.
"""

from typing import Any

from transformers import TrainerCallback

HORIZON = 10000  # LLaMA-Factory's (and trl's former PPOTrainer's) horizon
MAX_STEP = 0.2  # the proportional error is clipped to +-0.2


def adapted_coefficient(coef: float, kl: float, target: float, samples: int) -> float:
    """The KL coefficient after `samples` completions whose mean sequence KL was `kl`."""
    error = min(max(kl / target - 1, -MAX_STEP), MAX_STEP)
    return coef * (1 + error * samples / HORIZON)


class AdaptiveKl(TrainerCallback):
    """Adapts one trainer's `beta` toward the sequence KL `target` after each log; logs the coefficient as
    `kl_coef`."""

    def __init__(self, trainer: Any, target: float, completions_per_step: int) -> None:
        self.trainer = trainer
        self.target = target
        self.completions_per_step = completions_per_step
        self.last_step = 0

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        logs = logs if logs is not None else {}
        kl, length = logs.get("kl"), logs.get("completions/mean_length")
        if kl is None or length is None:  # an evaluation log, or no rollout since the last log
            return
        steps, self.last_step = state.global_step - self.last_step, state.global_step
        if steps <= 0:
            return
        self.trainer.beta = adapted_coefficient(self.trainer.beta, kl * length, self.target,
                                                steps * self.completions_per_step)
        logs["kl_coef"] = self.trainer.beta
