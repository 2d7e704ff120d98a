"""grpo: Group Relative Policy Optimization with trl's GRPOTrainer: per prompt, `num_generations` completions
are sampled, scored by the rewards, and the policy moves toward those above their group's mean."""

from typing import TYPE_CHECKING, Any

from lmforge.config import LmforgeConfig
from lmforge.train.stages import Stage, register_stage
from lmforge.train.stages.online import LOGGED, ONLINE, PLOTS, build_online_trainer
from lmforge.train.stages.online_checks import ONLINE_CHECKS

if TYPE_CHECKING:
    from lmforge.data.dataset import PreparedData


def build_trainer(cfg: LmforgeConfig, model: Any, tokenizer: Any, prepared: "PreparedData",
                  kwargs: dict[str, Any], ref_model: Any = None) -> Any:
    return build_online_trainer("grpo", cfg, model, tokenizer, prepared, kwargs)


register_stage(Stage("grpo", ONLINE, build_trainer, checks=ONLINE_CHECKS, plots=PLOTS, logs=LOGGED))
