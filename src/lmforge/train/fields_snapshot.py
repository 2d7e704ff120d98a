"""Snapshot of `transformers.TrainingArguments` fields for the torch-free config layer.

The config layer validates every TrainingArguments key (name and type) without importing
transformers, which takes seconds. It reads `config/training_fields.json`, written by
`python -m lmforge.train.fields_snapshot`; a test fails when the installed transformers differs.
"""

import dataclasses
import enum
import json
import types
import typing
from pathlib import Path
from typing import Any

SNAPSHOT_PATH = Path(__file__).resolve().parent.parent / "config" / "training_fields.json"
_SIMPLE = {bool: "bool", int: "int", float: "float", str: "str", dict: "dict", list: "list"}


def _describe(annotation: Any) -> dict[str, Any]:
    """Reduce a field annotation to {kinds: [...], choices: [...]} that pydantic can rebuild."""
    kinds: list[str] = []
    choices: list[str] = []
    members = typing.get_args(annotation) if isinstance(annotation, types.UnionType) or (
        typing.get_origin(annotation) is typing.Union) else (annotation,)
    for member in members:
        origin = typing.get_origin(member) or member
        if member is type(None):
            kinds.append("none")
        elif isinstance(origin, type) and issubclass(origin, enum.Enum):
            choices.extend(str(item.value) for item in origin)
        elif origin is typing.Literal:
            kinds.append("bool" if typing.get_args(member) == (False,) else "str")
        elif origin in _SIMPLE:
            kinds.append(_SIMPLE[origin])
        else:
            kinds.append("any")
    if choices and "str" in kinds:
        kinds.remove("str")
        kinds.append("choice")
    return {"kinds": sorted(set(kinds)), "choices": choices}


def current_training_fields() -> dict[str, dict[str, Any]]:
    from transformers import TrainingArguments

    fields: dict[str, dict[str, Any]] = {}
    for field in dataclasses.fields(TrainingArguments):
        if not field.init:
            continue
        described = _describe(field.type)
        const = field.metadata.get("const")  # a bare `--flag` on the command line: `fsdp=True` turns FSDP on
        if const is not None and _SIMPLE.get(type(const)) not in described["kinds"]:
            described["kinds"] = sorted({*described["kinds"], _SIMPLE[type(const)]})
        fields[field.name] = described
    return fields


if __name__ == "__main__":
    SNAPSHOT_PATH.write_text(json.dumps(current_training_fields(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SNAPSHOT_PATH}")
