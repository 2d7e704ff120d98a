"""kto: trl's KTOTrainer on lmforge-encoded rows with desirable/undesirable labels and KL pairs."""

from typing import Any

from lmforge.config import LmforgeConfig
from lmforge.data.dataset import PreparedData
from lmforge.data.stage_data import KTO
from lmforge.train.stages import Stage, register_stage
from lmforge.train.stages.pretokenized import pretokenized


def build_trainer(cfg: LmforgeConfig, model: Any, tokenizer: Any, prepared: PreparedData,
                  kwargs: dict[str, Any], ref_model: Any = None) -> Any:
    from trl import KTOConfig, KTOTrainer  # trl loads when a stage trains, not when it is looked up

    ft = cfg.finetuning
    args = KTOConfig(**kwargs, beta=ft.pref_beta, desirable_weight=ft.kto_chosen_weight,
                     undesirable_weight=ft.kto_rejected_weight, max_length=None)
    return pretokenized(KTOTrainer, ("prompt_ids", "completion_ids", "label"))(
        model=model, ref_model=ref_model, args=args, train_dataset=prepared.train, eval_dataset=prepared.evaluation,
        processing_class=tokenizer)


register_stage(Stage("kto", KTO, build_trainer, needs_reference=lambda cfg: True))
