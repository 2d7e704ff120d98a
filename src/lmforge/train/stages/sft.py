"""sft: supervised fine-tuning on conversations, answers supervised; the one stage `do_predict` can follow."""

from lmforge.data.stage_data import SFT
from lmforge.train.padding_free import padding_free_problem
from lmforge.train.stages import Stage, register_stage
from lmforge.train.stages.causal import build_trainer, needs_reference

register_stage(Stage("sft", SFT, build_trainer, predicts=True, token_losses=True, routes_depths=True,
                     needs_reference=needs_reference, checks=(padding_free_problem,),
                     plots=("loss", "eval_loss", "eval_accuracy")))
