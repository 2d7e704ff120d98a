"""sft: supervised fine-tuning on conversations, answers supervised; the one stage `do_predict` can follow."""

from lmforge.data.stage_data import SFT
from lmforge.train.stages import Stage, register_stage
from lmforge.train.stages.causal import build_trainer

register_stage(Stage("sft", SFT, build_trainer, predicts=True, plots=("loss", "eval_loss", "eval_accuracy")))
