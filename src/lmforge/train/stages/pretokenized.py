"""trl's DPO and KTO trainers fed with lmforge's own tokenization.

lmforge has already encoded every row with the run's template (the same ids as SFT, proven against the
model's template), in the column layout trl's collators read. trl 1.16's DPOTrainer and KTOTrainer always
re-tokenize text columns (unlike RewardTrainer, they have no already-tokenized path), so lmforge's subclass
of each answers their `_prepare_dataset` hook with the rows as they are.
"""

from functools import cache
from typing import Any

from lmforge.errors import DataError


@cache
def pretokenized(trainer_class: type, required_columns: tuple[str, ...]) -> type:
    """`trainer_class` taking lmforge's tokenized rows (which must have `required_columns`) as they are.
    Made on first use, so trl loads only when a stage trains (`lmforge check` looks stages up too)."""

    class Pretokenized(trainer_class):
        def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, dataset_name: str) -> Any:
            missing = [c for c in required_columns if c not in (dataset.column_names or [])]
            if missing:
                raise DataError(f"the {dataset_name} data lacks {', '.join(missing)}: was it prepared for this "
                                "stage?")
            return dataset

    Pretokenized.__name__ = Pretokenized.__qualname__ = f"Pretokenized{trainer_class.__name__}"
    return Pretokenized
