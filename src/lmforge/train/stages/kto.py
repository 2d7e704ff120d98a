"""kto: trl's KTOTrainer on lmforge-encoded rows with desirable/undesirable labels and KL pairs."""

from typing import Any

from lmforge.config import LmforgeConfig
from lmforge.data.dataset import PreparedData
from lmforge.data.stage_data import KTO
from lmforge.train.stages import Stage, register_stage
from lmforge.train.stages.pretokenized import on_tokenized_rows

LABELED_COLUMNS = ("prompt_ids", "completion_ids", "label")
TEXT_LABELED = {"prompt": "", "completion": "", "label": True}  # what KTOTrainer tokenizes at construction


def build_trainer(cfg: LmforgeConfig, model: Any, tokenizer: Any, prepared: PreparedData,
                  kwargs: dict[str, Any], ref_model: Any = None) -> Any:
    from trl import KTOConfig, KTOTrainer  # trl loads when a stage trains, not when it is looked up

    ft = cfg.finetuning
    args = KTOConfig(**kwargs, beta=ft.pref_beta, desirable_weight=ft.kto_chosen_weight,
                     undesirable_weight=ft.kto_rejected_weight, max_length=None)
    return on_tokenized_rows(KTOTrainer, TEXT_LABELED, LABELED_COLUMNS, prepared.train, prepared.evaluation,
                             model=model, ref_model=ref_model, args=args, processing_class=tokenizer)


register_stage(Stage("kto", KTO, build_trainer, needs_reference=lambda cfg: True))
