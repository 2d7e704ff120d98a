"""rloo: REINFORCE Leave-One-Out with trl's RLOOTrainer: each completion's baseline is the mean reward of the
other completions of its prompt; a KL penalty (`beta`, 0.05 by default) keeps the policy near its start."""

from typing import TYPE_CHECKING, Any

from lmforge.config import LmforgeConfig
from lmforge.train.stages import Stage, register_stage
from lmforge.train.stages.online import LOGGED, ONLINE, PLOTS, build_online_trainer
from lmforge.train.stages.online_checks import ONLINE_CHECKS

if TYPE_CHECKING:
    from lmforge.data.dataset import PreparedData


def build_trainer(cfg: LmforgeConfig, model: Any, tokenizer: Any, prepared: "PreparedData",
                  kwargs: dict[str, Any], ref_model: Any = None) -> Any:
    return build_online_trainer("rloo", cfg, model, tokenizer, prepared, kwargs)


register_stage(Stage("rloo", ONLINE, build_trainer, checks=ONLINE_CHECKS, plots=PLOTS, logs=LOGGED))
