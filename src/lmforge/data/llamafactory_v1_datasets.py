"""LLaMA-Factory v1's dataset files (`train_dataset: data/v1_sft_demo.yaml`), read as dataset registrations.

A v1 dataset file is a YAML mapping of dataset names to `{path, source, split, converter, size, weight,
streaming}`: `source` is `local` (a file or folder, named from the working directory, as v1 opens it) or
`hf_hub` (v1's default: `path` is a hub dataset id); `converter` says the rows' shape (`alpaca`, `sharegpt`,
`pair`: trl's `chosen` / `rejected` conversations; none: v1's own messages, data/llamafactory_v1.py); `size`
draws that many rows and `weight` scales a dataset's row count (rows drawn at random). `entries` gives each
dataset as the dataset_info.json entry lmforge reads (with `weight`), so a v1 file names datasets as
LLaMA-Factory v0.9's registry does. A v1 file is given wherever a dataset name is (`dataset`, `eval_dataset`).
"""

from pathlib import Path
from typing import Any

import yaml

from lmforge.errors import DataError

SUFFIXES = (".yaml", ".yml")
FIELDS = ("path", "source", "split", "converter", "size", "weight", "streaming")
SOURCES = {"local": "file_name", "hf_hub": "hf_hub_url", "ms_hub": "ms_hub_url"}
# the optional columns v1's converters read, under LLaMA-Factory's names
_MEDIA = {"images": "images", "videos": "videos", "audios": "audios"}
CONVERTERS: dict[str | None, dict[str, Any]] = {
    "alpaca": {"formatting": "alpaca", "columns": {"system": "system", **_MEDIA}},
    "sharegpt": {"formatting": "sharegpt", "columns": {"messages": "conversations", "tools": "tools", **_MEDIA}},
    "pair": {"formatting": "auto", "columns": {"tools": "tools", **_MEDIA}},
    None: {"formatting": "auto", "columns": {"tools": "tools", **_MEDIA}},
}


def is_dataset_file(name: str) -> bool:
    return name.endswith(SUFFIXES)


def _entry(name: str, info: Any, where: Path) -> dict[str, Any]:
    if not isinstance(info, dict) or not isinstance(info.get("path"), str):
        raise DataError(f"{where}: dataset `{name}` must be a mapping with a `path` (and optionally "
                        f"{', '.join(f'`{field}`' for field in FIELDS[1:])})")
    unknown = sorted(set(info) - set(FIELDS))
    if unknown:
        raise DataError(f"{where}: dataset `{name}` has unknown key(s) {', '.join(f'`{k}`' for k in unknown)}; "
                        f"a v1 dataset reads {', '.join(f'`{field}`' for field in FIELDS)}")
    source, converter = info.get("source", "hf_hub"), info.get("converter")
    if source not in SOURCES:
        raise DataError(f"{where}: dataset `{name}` `source: {source}`: one of {', '.join(SOURCES)}")
    if converter not in CONVERTERS:
        raise DataError(f"{where}: dataset `{name}` `converter: {converter}`: one of alpaca, sharegpt, pair, or none "
                        "(rows in v1's own shape)")
    if info.get("streaming"):
        raise DataError(f"{where}: dataset `{name}` `streaming: true`: lmforge streams every dataset of a run or "
                        "none; set `streaming: true` in the run's config instead")
    location = Path(info["path"]).expanduser() if source == "local" else info["path"]
    if isinstance(location, Path) and not location.is_absolute():
        location = Path.cwd() / location
    entry: dict[str, Any] = {SOURCES[source]: str(location), **CONVERTERS[converter]}
    for field, key in (("split", "split"), ("size", "num_samples"), ("weight", "weight")):
        if info.get(field) is not None:
            entry[key] = info[field]
    return entry


def _listed(path: Path) -> dict[str, Any]:
    try:
        listed = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise DataError(f"dataset file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise DataError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(listed, dict) or not listed:
        raise DataError(f"{path} must map dataset names to `{{path, source, converter, ...}}` (LLaMA-Factory v1's "
                        "dataset file)")
    return {str(name): info for name, info in listed.items()}


def entries(path: Path) -> dict[str, dict[str, Any]]:
    """The datasets a v1 dataset file lists, each as a dataset_info.json entry (relative paths made absolute)."""
    return {name: _entry(name, info, path) for name, info in _listed(path).items()}


def lists_only_pairs(path: Path) -> bool:
    """Whether every dataset of a v1 dataset file is read by the `pair` converter (what v1's `dpo` trains on)."""
    return all(isinstance(info, dict) and info.get("converter") == "pair" for info in _listed(path).values())
