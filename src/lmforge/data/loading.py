"""Read a dataset's rows from local files and convert them to conversations, row by row."""

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmforge.data.conversation import Conversation
from lmforge.data.formats import RowError, converter
from lmforge.data.registry import DATA_SUFFIXES, DatasetSpec
from lmforge.data.text_files import read_text
from lmforge.errors import DataError


def _json_rows(path: Path) -> Iterator[tuple[str, Any]]:
    text = read_text(path)
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
    if builder == "csv":
        read_text(path)  # datasets would fail deep inside its CSV reader
    table = load_dataset(builder, data_files=str(path), split="train")
    for number, row in enumerate(table, start=1):
        yield f"{path}:row {number}", row


def hub_rows(spec: DatasetSpec) -> Iterator[tuple[str, Any]]:
    """Rows of a hub dataset (`hf_hub_url`, with `subset`, `folder` and `split`), through datasets."""
    for number, row in enumerate(load_hub_dataset(spec), start=1):
        yield f"{spec.hf_hub_url}:row {number}", row


def load_hub_dataset(spec: DatasetSpec) -> Any:
    from datasets import load_dataset

    try:
        return load_dataset(spec.hf_hub_url, name=spec.subset, data_dir=spec.folder, split=spec.split)
    except (FileNotFoundError, ValueError, ConnectionError) as err:
        raise DataError(f"dataset `{spec.name}`: cannot load {spec.hf_hub_url} (subset {spec.subset}, split "
                        f"{spec.split}): {err}") from None


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
    else:  # .txt: one document per non-empty line, as LLaMA-Factory reads it
        for number, line in enumerate(read_text(path).splitlines(), start=1):
            if line.strip():
                yield f"{path}:line {number}", {"text": line}


@dataclass
class LoadedDataset:
    name: str
    items: list[Any]  # Conversation (sft) or str documents (pt)
    skipped: list[str] = field(default_factory=list)  # "location: reason" of each skipped row

    @property
    def conversations(self) -> list[Conversation]:
        return self.items


def document_converter(spec: DatasetSpec) -> Callable[[dict[str, Any], str], str]:
    """Pretraining rows: the text of the `prompt` column (LLaMA-Factory maps it to `text`)."""
    def convert(row: dict[str, Any], where: str) -> str:
        column = spec.columns.prompt if spec.columns.prompt in row else "text"
        if column not in row:
            raise RowError(where, f"missing column `{spec.columns.prompt}` (or `text`) holding the document")
        text = row[column]
        if not isinstance(text, str) or not text.strip():
            raise RowError(where, f"`{column}` must be a non-empty string")
        return text

    return convert


def iter_items(spec: DatasetSpec, convert: Callable[[dict[str, Any], str], Any], *, max_samples: int | None,
               on_bad_row: str, skipped: list[str]) -> Iterator[Any]:
    """Converted rows one by one; bad rows raise (on_bad_row: error) or are recorded in `skipped`."""
    limit = min(filter(None, (max_samples, spec.num_samples)), default=None)
    produced = 0
    rows = read_rows(spec.path) if spec.path is not None else hub_rows(spec)
    for where, row in rows:
        if limit is not None and produced >= limit:
            return
        try:
            if not isinstance(row, dict):
                raise RowError(where, f"a row must be an object, got {type(row).__name__}")
            item = convert(row, where)
        except RowError as err:
            if on_bad_row == "error":
                raise DataError(f"{err} (set `on_bad_row: skip` to skip such rows with a report)") from None
            skipped.append(str(err))
            continue
        produced += 1
        yield item


def _drawn(items: list[Any], count: int, seed: int) -> list[Any]:
    """`num_samples` rows drawn from `items` (LLaMA-Factory's rule): a random subset when there are enough,
    else every row once plus random repeats (with replacement) up to `count`; seeded, so runs repeat."""
    rng = random.Random(seed)
    order = rng.sample(range(len(items)), len(items))[:count]
    order += rng.choices(range(len(items)), k=count - len(order))
    return [items[index] for index in order]


def load_items(spec: DatasetSpec, convert: Callable[[dict[str, Any], str], Any], *, max_samples: int | None,
               on_bad_row: str, seed: int = 42) -> LoadedDataset:
    """Every converted row (`num_samples` of them drawn with `seed` when the registration sets it, then at most
    `max_samples`)."""
    loaded = LoadedDataset(spec.name, [])
    every_row = spec.model_copy(update={"num_samples": None, "weight": None})
    drawn = spec.num_samples or spec.weight
    loaded.items = list(iter_items(every_row, convert, max_samples=None if drawn else max_samples,
                                   on_bad_row=on_bad_row, skipped=loaded.skipped))
    if spec.num_samples and loaded.items:
        loaded.items = _drawn(loaded.items, spec.num_samples, seed)
    if spec.weight and loaded.items:  # after `size`, as LLaMA-Factory v1 applies them
        loaded.items = _drawn(loaded.items, int(len(loaded.items) * spec.weight), seed)
    loaded.items = loaded.items[:max_samples]
    if not loaded.items:
        raise DataError(f"dataset `{spec.name}` ({spec.path}) has no usable rows"
                        + (f"; first problem: {loaded.skipped[0]}" if loaded.skipped else ""))
    return loaded


def load_conversations(spec: DatasetSpec, *, max_samples: int | None, on_bad_row: str,
                       media_dir: Path | None = None) -> LoadedDataset:
    return load_items(spec, converter(spec, media_dir), max_samples=max_samples, on_bad_row=on_bad_row)
