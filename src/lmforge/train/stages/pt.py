"""pt: continued pretraining on documents, cut into full `cutoff_len` blocks by default (`packing`)."""

from lmforge.data.stage_data import PT
from lmforge.train.padding_free import padding_free_problem
from lmforge.train.stages import Stage, register_stage
from lmforge.train.stages.causal import build_trainer, needs_reference

register_stage(Stage("pt", PT, build_trainer, token_losses=True, routes_depths=True, needs_reference=needs_reference,
                     checks=(padding_free_problem,),
                     plots=("loss", "eval_loss", "eval_accuracy")))
