"""ppo: LLaMA-Factory's PPO stage, run as RLOO (trl's RLOOTrainer), the closest algorithm trl maintains.

trl 1.x keeps PPO (policy + value model) only as an unmaintained experiment. RLOO optimises the same
objective with the same reward model and KL penalty, without a value model: each prompt gets
`num_generations` completions and each one's baseline is the mean reward of the others. A LLaMA-Factory
PPO config (`reward_model`, `ppo_epochs` as `num_iterations`) runs as it is, with a one-line notice of
what changed; without a reward the run is refused with the config to write instead.
"""

import logging
from typing import TYPE_CHECKING, Any

from lmforge.config import LmforgeConfig
from lmforge.train.stages import Stage, register_stage
from lmforge.train.stages.online import LOGGED, ONLINE, PLOTS, build_online_trainer
from lmforge.train.stages.online_checks import ONLINE_CHECKS, has_rewards

if TYPE_CHECKING:
    from lmforge.data.dataset import PreparedData

logger = logging.getLogger(__name__)


def notice(cfg: LmforgeConfig) -> str:
    rl = cfg.rl
    scored = " and ".join(filter(None, [f"`reward_model: {rl.reward_model}`" if rl.reward_model else "",
                                        f"`reward_funcs: {','.join(rl.reward_funcs)}`" if rl.reward_funcs else ""]))
    beta = 0.05 if rl.beta is None else rl.beta
    return (f"`stage: ppo` runs as RLOO (trl's maintained successor of PPO; no value model): "
            f"{rl.num_generations} completions per prompt scored by {scored}, each baselined by the others' mean, "
            f"KL beta {beta}; write `stage: rloo` to choose it yourself")


def needs_a_reward(cfg: LmforgeConfig) -> str | None:
    if has_rewards(cfg) is None:
        return None
    return ("`stage: ppo` (run as RLOO) scores completions with a reward model: add `reward_model: "
            "saves/<model>/rm` (the output_dir of a `stage: rm` run), or train with rules instead:\n"
            "    stage: grpo\n    reward_funcs: accuracy        # or format_think, length, path/to/file.py:fn\n"
            "    num_generations: 8")


def build_trainer(cfg: LmforgeConfig, model: Any, tokenizer: Any, prepared: "PreparedData",
                  kwargs: dict[str, Any], ref_model: Any = None) -> Any:
    logger.warning(notice(cfg))
    return build_online_trainer("rloo", cfg, model, tokenizer, prepared, kwargs)


CHECKS = tuple(needs_a_reward if check is has_rewards else check for check in ONLINE_CHECKS)
register_stage(Stage("ppo", ONLINE, build_trainer, checks=CHECKS, plots=PLOTS, logs=LOGGED))
