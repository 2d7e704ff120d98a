"""kto: trl's KTOTrainer on lmforge-encoded rows with desirable/undesirable labels and KL pairs."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lmforge.config import LmforgeConfig
from lmforge.data.labels import IGNORE_INDEX
from lmforge.data.stage_data import KTO
from lmforge.train.stages import Stage, register_stage
from lmforge.train.stages.pretokenized import on_tokenized_rows
from lmforge.train.stages.trl_checks import PREFERENCE_TRAINER_CHECKS

if TYPE_CHECKING:
    from lmforge.data.dataset import PreparedData
    from lmforge.data.multimodal.collator import MultimodalCollator

LABELED_COLUMNS = ("prompt_ids", "completion_ids", "label")
TEXT_LABELED = {"prompt": "", "completion": "", "label": True}  # what KTOTrainer tokenizes at construction


@dataclass
class MultimodalLabeled:
    """trl's KTO batch from the multimodal collator's KTO rows: `input_ids`, `attention_mask` and
    `completion_mask` (the labeled answer), the same for the KL pairs (`KL_*`), `label`, and the media tensors,
    which serve both passes (a KL pair keeps its row's prompt and media)."""

    collator: "MultimodalCollator"

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.collator(features)
        for prefix in ("", "KL_"):
            batch[f"{prefix}completion_mask"] = (batch.pop(f"{prefix}labels") != IGNORE_INDEX).long()
        return batch


def build_trainer(cfg: LmforgeConfig, model: Any, tokenizer: Any, prepared: "PreparedData",
                  kwargs: dict[str, Any], ref_model: Any = None) -> Any:
    """A multimodal run's KTO rows are encoded per batch with their media by `prepared.collator`."""
    from trl import KTOConfig, KTOTrainer  # trl loads when a stage trains, not when it is looked up

    from lmforge.data.multimodal.examples import ROW_COLUMN
    from lmforge.train.trl_head import use_chunked_head

    ft = cfg.finetuning
    args = KTOConfig(**kwargs, beta=ft.pref_beta, desirable_weight=ft.kto_chosen_weight,
                     undesirable_weight=ft.kto_rejected_weight, max_length=None)
    if prepared.collator is not None:
        return on_tokenized_rows(KTOTrainer, TEXT_LABELED, (ROW_COLUMN,), prepared.train, prepared.evaluation,
                                 model=model, ref_model=ref_model, args=args,
                                 data_collator=MultimodalLabeled(prepared.collator),
                                 processing_class=prepared.collator.encoder.processor)
    trainer = on_tokenized_rows(KTOTrainer, TEXT_LABELED, LABELED_COLUMNS, prepared.train, prepared.evaluation,
                                model=model, ref_model=ref_model, args=args, processing_class=tokenizer)
    if cfg.training.chunked_loss is not False:  # lmforge's chunked log-probabilities (train/trl_head.py)
        use_chunked_head(trainer)
    return trainer


def batch_of_two_or_more(cfg: LmforgeConfig) -> str | None:
    """KTOTrainer refuses `per_device_train_batch_size <= 1` (its KL term is estimated within each batch)."""
    size = cfg.training.per_device_train_batch_size
    if size is None or size > 1:
        return None
    accumulation = cfg.training.gradient_accumulation_steps or 1
    hint = (f" and `gradient_accumulation_steps: {accumulation // 2}` for the same effective batch"
            if accumulation > 1 and accumulation % 2 == 0 else "")
    return (f"`stage: kto` needs `per_device_train_batch_size` of 2 or more (got {size}): trl's KTOTrainer "
            f"estimates the KL term from the other rows of each batch; set `per_device_train_batch_size: 2`{hint}")


def sequential_sampling(cfg: LmforgeConfig) -> str | None:
    """KTOTrainer refuses any `train_sampling_strategy` but its default, sequential."""
    strategy = cfg.training.train_sampling_strategy
    if strategy is None or strategy == "sequential":
        return None
    return (f"`stage: kto` trains its rows in order: trl's KTOTrainer accepts only `train_sampling_strategy: "
            f"sequential` (got `{strategy}`); remove the key")


register_stage(Stage("kto", KTO, build_trainer, needs_reference=lambda cfg: True,
                     checks=(batch_of_two_or_more, sequential_sampling, *PREFERENCE_TRAINER_CHECKS)))
