"""Building a run's datasets in tests the way the runner does: with the data part of the configured stage."""

from typing import Any

from lmforge.config import LmforgeConfig
from lmforge.data.dataset import PreparedData, build_datasets
from lmforge.train.stages import STAGES


def build_stage_datasets(cfg: LmforgeConfig, *args: Any, **kwargs: Any) -> PreparedData:
    """`build_datasets` as the runner calls it for `cfg`: its data group, the data part of the stage it names,
    its seed."""
    stage = cfg.finetuning.stage
    return build_datasets(cfg.data, *args, stage=STAGES.get(stage).data, stage_name=stage, seed=cfg.training.seed,
                          **kwargs)
