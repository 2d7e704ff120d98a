"""Read a dataset's rows from local files and convert them to conversations, row by row."""

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmforge.data.conversation import Conversation
from lmforge.data.formats import RowError, converter
from lmforge.data.registry import DATA_SUFFIXES, DatasetSpec
from lmforge.errors import DataError


def _json_rows(path: Path) -> Iterator[tuple[str, Any]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield f"{path}:line {number}", json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: line {number} is not valid JSON: {err.msg} (column {err.colno})") from None
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path} is not valid JSON: line {err.lineno}, column {err.colno}: {err.msg}") from None
    if not isinstance(data, list):
        raise DataError(f"{path} must hold a JSON list of rows, got {type(data).__name__}")
    for number, row in enumerate(data, start=1):
        yield f"{path}:row {number}", row


def _table_rows(path: Path) -> Iterator[tuple[str, Any]]:
    from datasets import load_dataset

    builder = {".csv": "csv", ".parquet": "parquet", ".arrow": "arrow"}[path.suffix]
    table = load_dataset(builder, data_files=str(path), split="train")
    for number, row in enumerate(table, start=1):
        yield f"{path}:row {number}", row


def read_rows(path: Path) -> Iterator[tuple[str, Any]]:
    """(location, row) pairs of a data file or of every data file in a folder."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in DATA_SUFFIXES)
        if not files:
            raise DataError(f"{path} holds no data files ({', '.join(sorted(DATA_SUFFIXES))})")
        for file in files:
            yield from read_rows(file)
    elif path.suffix in (".json", ".jsonl"):
        yield from _json_rows(path)
    elif path.suffix in (".csv", ".parquet", ".arrow"):
        yield from _table_rows(path)
    else:
        raise DataError(f"{path}: `{path.suffix}` files hold plain text for pretraining; sft needs "
                        "json, jsonl, csv, parquet or arrow rows")


@dataclass
class LoadedDataset:
    name: str
    conversations: list[Conversation]
    skipped: list[str] = field(default_factory=list)  # "location: reason" of each skipped row


def load_conversations(spec: DatasetSpec, *, max_samples: int | None, on_bad_row: str) -> LoadedDataset:
    assert spec.path is not None
    convert = converter(spec)
    loaded = LoadedDataset(spec.name, [])
    limit = min(filter(None, (max_samples, spec.num_samples)), default=None)
    for where, row in read_rows(spec.path):
        if limit is not None and len(loaded.conversations) >= limit:
            break
        try:
            if not isinstance(row, dict):
                raise RowError(where, f"a row must be an object, got {type(row).__name__}")
            loaded.conversations.append(convert(row, where))
        except RowError as err:
            if on_bad_row == "error":
                raise DataError(f"{err} (set `on_bad_row: skip` to skip such rows with a report)") from None
            loaded.skipped.append(str(err))
    if not loaded.conversations:
        raise DataError(f"dataset `{spec.name}` ({spec.path}) has no usable rows"
                        + (f"; first problem: {loaded.skipped[0]}" if loaded.skipped else ""))
    return loaded
