"""trl's DPO and KTO trainers fed with lmforge's own tokenization.

lmforge has already encoded every row with the run's template (the same ids as SFT, proven against the
model's template), in the column layout trl's collators read. trl 1.16's DPOTrainer and KTOTrainer always
re-tokenize text columns (unlike RewardTrainer, they have no already-tokenized path), so these subclasses
alone answer their `_prepare_dataset` hook with the rows as they are.
"""

from typing import Any

from lmforge.errors import DataError


class PretokenizedMixin:
    required_columns: tuple[str, ...] = ()

    def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, dataset_name: str) -> Any:
        missing = [c for c in self.required_columns if c not in (dataset.column_names or [])]
        if missing:
            raise DataError(f"the {dataset_name} data lacks {', '.join(missing)}: was it prepared for this stage?")
        return dataset
