"""ppo: LLaMA-Factory's PPO stage. lmforge prepares (and previews) its conversations as sft does, but has no
PPO trainer yet, so `lmforge train` refuses it before anything loads."""

from lmforge.data.stage_data import SFT
from lmforge.train.stages import Stage, register_stage

register_stage(Stage("ppo", SFT, build_trainer=None))
