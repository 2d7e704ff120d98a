"""trl's DPO and KTO trainers fed with lmforge's own tokenization, through their public API only.

lmforge has already encoded every row with the run's template (the same ids as SFT, proven against the
model's template), in the column layout trl's collators read. trl 1.16's DPOTrainer and KTOTrainer insist on
a `train_dataset` at construction and always tokenize its text columns there (unlike RewardTrainer, they
have no already-tokenized path, and DPOConfig/KTOConfig no flag to skip it). So each is built on a one-row
text stand-in, which trl tokenizes and nothing ever trains on, and then handed lmforge's rows through the
public `train_dataset` and `eval_dataset` attributes that `train()` and `evaluate()` read.
"""

from typing import Any

from lmforge.errors import DataError


def check_columns(dataset: Any, required_columns: tuple[str, ...], dataset_name: str) -> None:
    if dataset.column_names is None:  # a stream whose columns are known only once it is read
        return
    missing = [c for c in required_columns if c not in dataset.column_names]
    if missing:
        raise DataError(f"the {dataset_name} data lacks {', '.join(missing)}: was it prepared for this stage?")


def on_tokenized_rows(trainer_class: type, stand_in_row: dict[str, Any], required_columns: tuple[str, ...],
                      train: Any, evaluation: Any, **kwargs: Any) -> Any:
    """`trainer_class(**kwargs)` training on `train` and evaluating on `evaluation` (or None) as they are;
    `stand_in_row` is one row of the text columns trl tokenizes at construction."""
    from datasets import Dataset, IterableDataset  # loaded when a stage trains, not when it is looked up

    check_columns(train, required_columns, "train")
    if evaluation is not None:
        check_columns(evaluation, required_columns, "eval")
    stand_in = Dataset.from_dict({column: [value] for column, value in stand_in_row.items()})
    if isinstance(train, IterableDataset):  # trl sets up streaming (batches not dispatched) from the type
        stand_in = stand_in.to_iterable_dataset()
    # An eval stand-in too: transformers refuses an `eval_strategy` without an eval dataset at construction.
    trainer = trainer_class(train_dataset=stand_in, eval_dataset=None if evaluation is None else stand_in, **kwargs)
    trainer.train_dataset, trainer.eval_dataset = train, evaluation
    return trainer
