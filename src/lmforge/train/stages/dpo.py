"""dpo: trl's DPOTrainer for the sigmoid, hinge and ipo losses; orpo and simpo, which need no
reference model, with the small reference-free trainer in `train/stages/reference_free.py`.

`pref_ftx` adds trl's `sft` loss (NLL on the chosen answer) with that weight. The reference is
`ref_model` when given, else the base with the adapter disabled (LoRA) or a frozen copy (full).
"""

from typing import Any

from trl import DPOConfig, DPOTrainer

from lmforge.config import LmforgeConfig
from lmforge.data.dataset import PreparedData
from lmforge.train.stages.pretokenized import PretokenizedMixin
from lmforge.train.stages.reference_free import ReferenceFreeTrainer

PREFERENCE_COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids")


class PretokenizedDPOTrainer(PretokenizedMixin, DPOTrainer):
    required_columns = PREFERENCE_COLUMNS


def build_trainer(cfg: LmforgeConfig, model: Any, tokenizer: Any, prepared: PreparedData,
                  kwargs: dict[str, Any], ref_model: Any = None) -> Any:
    ft = cfg.finetuning
    if ft.pref_loss in ("orpo", "simpo"):
        return ReferenceFreeTrainer.create(cfg, model, tokenizer, prepared, kwargs)
    losses, weights = [ft.pref_loss], [1.0]
    if ft.pref_ftx:
        losses.append("sft")
        weights.append(ft.pref_ftx)
    args = DPOConfig(**kwargs, beta=ft.pref_beta, loss_type=losses, loss_weights=weights,
                     max_length=None)  # rows are already fitted to cutoff_len
    return PretokenizedDPOTrainer(model=model, ref_model=ref_model, args=args, train_dataset=prepared.train,
                                  eval_dataset=prepared.evaluation, processing_class=tokenizer)


def needs_reference(cfg: LmforgeConfig) -> bool:
    return cfg.finetuning.pref_loss not in ("orpo", "simpo")
