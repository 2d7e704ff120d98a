"""rm: a reward model (the base with a scalar value head) trained by trl's RewardTrainer on
prompt+chosen vs prompt+rejected, both encoded with the run's template. A vision/audio-language model's
ranking rows keep their media: the multimodal collator encodes both answers on one processing of it."""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lmforge.config import LmforgeConfig
from lmforge.data.stage_data import RM
from lmforge.train.stages import Stage, register_stage
from lmforge.train.stages.pretokenized import on_tokenized_rows

if TYPE_CHECKING:
    from datasets import Dataset

    from lmforge.data.dataset import PreparedData
    from lmforge.data.multimodal.collator import MultimodalCollator

TOKENIZED_PAIR = {"chosen_ids": [0], "rejected_ids": [0]}  # RewardTrainer keeps tokenized rows as they are


@dataclass
class MultimodalScoredPairs:
    """RewardTrainer's batch from the multimodal collator's ranking rows: the chosen conversations, then the
    rejected ones (`input_ids`, `attention_mask`; the head scores each at its last token) and the media tensors
    of both halves. No labels: the loss compares the two scores."""

    collator: "MultimodalCollator"

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.collator(features)
        del batch["labels"]
        return batch


def full_sequences(dataset: "Dataset | None") -> "Dataset | None":
    """prompt_ids + answer ids: the reward model scores whole conversations. RewardTrainer takes rows with
    `chosen_ids` and `rejected_ids` as already tokenized and keeps them as they are."""
    if dataset is None:
        return None
    return dataset.map(lambda row: {"chosen_ids": row["prompt_ids"] + row["chosen_ids"],
                                    "rejected_ids": row["prompt_ids"] + row["rejected_ids"]},
                       remove_columns=["prompt_ids"])


def build_trainer(cfg: LmforgeConfig, model: Any, tokenizer: Any, prepared: "PreparedData",
                  kwargs: dict[str, Any], ref_model: Any = None) -> Any:
    from trl import RewardConfig, RewardTrainer  # trl loads when a stage trains, not when it is looked up

    from lmforge.data.multimodal.examples import ROW_COLUMN

    args = RewardConfig(**kwargs, max_length=None)  # rows are already fitted to cutoff_len
    if prepared.collator is not None:
        return on_tokenized_rows(RewardTrainer, TOKENIZED_PAIR, (ROW_COLUMN,), prepared.train, prepared.evaluation,
                                 model=model, args=args, data_collator=MultimodalScoredPairs(prepared.collator),
                                 processing_class=tokenizer)
    return RewardTrainer(model=model, args=args, train_dataset=full_sequences(prepared.train),
                         eval_dataset=full_sequences(prepared.evaluation), processing_class=tokenizer)


register_stage(Stage("rm", RM, build_trainer, reward_head=True, sequences_per_row=2,
                     plots=("loss", "eval_loss", "accuracy", "eval_accuracy")))
