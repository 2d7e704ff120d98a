"""dpo: trl's DPOTrainer for the sigmoid, hinge and ipo losses; orpo and simpo, which need no
reference model, with the small reference-free trainer in `train/reference_free.py`.

Text rows are scored by lmforge's chunked log-probabilities behind trl's call (`train/trl_head.py`) unless
`chunked_loss: false`. `pref_ftx` adds trl's `sft` loss (NLL on the chosen answer) with that weight. The reference is
`ref_model` when given, else the base with the adapter disabled (LoRA) or a frozen copy (full).
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lmforge.config import LmforgeConfig
from lmforge.data.labels import IGNORE_INDEX
from lmforge.data.stage_data import DPO
from lmforge.train.stages import Check, Stage, register_stage
from lmforge.train.stages.pretokenized import on_tokenized_rows
from lmforge.train.stages.trl_checks import PREFERENCE_TRAINER_CHECKS

if TYPE_CHECKING:
    from lmforge.data.dataset import PreparedData
    from lmforge.data.multimodal.collator import MultimodalCollator

PREFERENCE_COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids")
TEXT_PAIR = {"prompt": "", "chosen": "", "rejected": ""}  # what DPOTrainer tokenizes at construction


@dataclass
class MultimodalPairs:
    """trl's DPO batch from the multimodal collator's ranking rows: the chosen conversations, then the
    rejected ones (`input_ids`, `attention_mask`), `completion_mask` where the answers are supervised, and
    the media tensors of both halves (each row's media decoded and processed once, used twice)."""

    collator: "MultimodalCollator"

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.collator(features)
        batch["completion_mask"] = (batch.pop("labels") != IGNORE_INDEX).long()
        return batch


def build_trainer(cfg: LmforgeConfig, model: Any, tokenizer: Any, prepared: "PreparedData",
                  kwargs: dict[str, Any], ref_model: Any = None) -> Any:
    """A multimodal run's ranking rows are encoded per batch with their media by `prepared.collator`."""
    # trl and torch load when a stage trains, not when it is looked up (`lmforge check`)
    from trl import DPOConfig, DPOTrainer

    from lmforge.data.multimodal.examples import ROW_COLUMN
    from lmforge.train.reference_free import ReferenceFreeTrainer
    from lmforge.train.trl_head import use_chunked_head

    ft = cfg.finetuning
    if ft.pref_loss in ("orpo", "simpo"):
        return ReferenceFreeTrainer.create(cfg, model, tokenizer, prepared, kwargs)
    losses, weights = dpo_losses(cfg)
    args = DPOConfig(**kwargs, beta=ft.pref_beta, loss_type=losses, loss_weights=weights, ld_alpha=ft.ld_alpha,
                     label_smoothing=ft.dpo_label_smoothing, max_length=None)  # rows are already fitted to cutoff_len
    if prepared.collator is not None:
        return on_tokenized_rows(
            DPOTrainer, TEXT_PAIR, (ROW_COLUMN,), prepared.train, prepared.evaluation, model=model,
            ref_model=ref_model, args=args, data_collator=MultimodalPairs(prepared.collator),
            processing_class=prepared.collator.encoder.processor)
    trainer = on_tokenized_rows(DPOTrainer, TEXT_PAIR, PREFERENCE_COLUMNS, prepared.train, prepared.evaluation,
                                model=model, ref_model=ref_model, args=args, processing_class=tokenizer)
    if cfg.training.chunked_loss is not False:
        use_chunked_head(trainer)
    return trainer


def dpo_losses(cfg: LmforgeConfig) -> tuple[list[str], list[float]]:
    """trl's loss types and weights for the configured DPO loss.

    cDPO (`dpo_label_smoothing` e) is (1-e) x -log s(x) + e x -log s(-x) with x = beta x margin, which is
    -log s(x) + e x, and trl's `robust` loss (same e) is -log s(x) - e x / (1-2e): so cDPO is
    (2-2e) x sigmoid - (1-2e) x robust. `pref_bco_weight` w mixes trl's `bco_pair` in as (dpo + w x bco) / (1+w);
    `pref_ftx` adds the SFT loss on the chosen answers."""
    ft = cfg.finetuning
    smoothing, bco = ft.dpo_label_smoothing, ft.pref_bco_weight
    losses, weights = ([ft.pref_loss], [1.0]) if not smoothing else (["sigmoid", "robust"],
                                                                    [2 - 2 * smoothing, -(1 - 2 * smoothing)])
    if bco:
        losses, weights = [*losses, "bco_pair"], [w / (1 + bco) for w in weights] + [bco / (1 + bco)]
    if ft.pref_ftx:
        losses, weights = [*losses, "sft"], [*weights, ft.pref_ftx]
    return losses, weights


def needs_reference(cfg: LmforgeConfig) -> bool:
    return cfg.finetuning.pref_loss not in ("orpo", "simpo")


def for_dpo_trainer(check: Check) -> Check:
    """`check` where trl's DPOTrainer trains (every loss that needs a reference model)."""
    return lambda cfg: check(cfg) if needs_reference(cfg) else None


register_stage(Stage("dpo", DPO, build_trainer, needs_reference=needs_reference, sequences_per_row=2,
                     checks=tuple(map(for_dpo_trainer, PREFERENCE_TRAINER_CHECKS)),
                     plots=("loss", "eval_loss", "rewards/accuracies")))
