"""The training group: every `transformers.TrainingArguments` field, typed, without importing it.

Field names and types come from `training_fields.json` (see `lmforge.train.fields_snapshot`).
Fields the user does not set keep transformers' defaults, except the few lmforge sets below.
"""

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

_SNAPSHOT = Path(__file__).resolve().parent / "training_fields.json"
_KIND_TYPES: dict[str, Any] = {
    "bool": bool, "int": int, "float": float, "str": str, "dict": dict, "list": list, "none": None, "any": Any,
}


def _annotation(spec: dict[str, Any]) -> Any:
    members: list[Any] = []
    for kind in spec["kinds"]:
        if kind == "choice":
            members.append(Literal[tuple(spec["choices"])])
        else:
            members.append(_KIND_TYPES[kind])
    if Any in members:
        return Any
    annotation = members[0]
    for member in members[1:]:
        annotation = annotation | member
    return annotation


class _TrainingBase(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    def trainer_kwargs(self) -> dict[str, Any]:
        """The TrainingArguments keyword arguments: what the user set plus lmforge's own defaults."""
        kwargs = self.model_dump(exclude_unset=True, exclude=set(LMFORGE_TRAINING_KEYS))
        for key, value in LMFORGE_DEFAULTS.items():
            kwargs.setdefault(key, value)
        if self.warmup_ratio is not None:  # transformers 5 reads a warmup_steps below 1 as a ratio
            kwargs["warmup_steps"] = self.warmup_ratio
        return kwargs

    def runs_training(self) -> bool:
        """LLaMA-Factory's `do_train`. Unset, lmforge trains unless the config only asks for `do_predict`
        (LLaMA-Factory's prediction configs set `do_predict` and leave `do_train` out)."""
        if "do_train" in self.model_fields_set:
            return bool(self.do_train)
        return not self.do_predict


# Keys we add: LLaMA-Factory's training keys that transformers 5 no longer has.
LMFORGE_TRAINING_KEYS: dict[str, tuple[Any, Any]] = {
    "warmup_ratio": (float | None, Field(None, ge=0, lt=1, description="Warmup share of all steps.")),
    "overwrite_output_dir": (bool, Field(False, description="Start afresh instead of resuming from "
                                                              "the last checkpoint in output_dir.")),
    "chunked_loss": (bool | None, Field(None, description="Cross-entropy over supervised positions in chunks, "
                                                          "never whole logits; default on where the head is plain.")),
    "predict_with_generate": (bool | None, Field(None, description="With `do_predict`: answer eval_dataset's prompts "
                                                                   "by generation and score them (BLEU-4, ROUGE). "
                                                                   "lmforge's prediction always generates.")),
}
# Defaults that differ from transformers' (applied only when the user sets nothing).
LMFORGE_DEFAULTS: dict[str, Any] = {"report_to": "none", "logging_steps": 10}


def _build() -> type[_TrainingBase]:
    snapshot: dict[str, dict[str, Any]] = json.loads(_SNAPSHOT.read_text())
    fields: dict[str, Any] = {
        name: (_annotation(spec) | None, None) for name, spec in snapshot.items()
    }
    fields.update(LMFORGE_TRAINING_KEYS)
    return create_model("TrainingGroup", __base__=_TrainingBase, **fields)


TrainingGroup = _build()
