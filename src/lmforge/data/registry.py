"""`dataset_info.json`: LLaMA-Factory's dataset registry, read as is."""

import difflib
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lmforge.config.data import DataGroup
from lmforge.data import llamafactory_v1_datasets
from lmforge.data.text_files import read_text
from lmforge.errors import DataError


class Columns(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompt: str = "instruction"
    query: str = "input"
    response: str = "output"
    history: str | None = None
    messages: str = "conversations"
    system: str | None = None
    tools: str | None = None
    images: str | None = None
    videos: str | None = None
    audios: str | None = None
    chosen: str | None = None
    rejected: str | None = None
    kto_tag: str | None = None


class Tags(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role_tag: str = "from"
    content_tag: str = "value"
    user_tag: str = "human"
    assistant_tag: str = "gpt"
    observation_tag: str = "observation"
    function_tag: str = "function_call"
    system_tag: str = "system"


OPENAI_TAGS = Tags(role_tag="role", content_tag="content", user_tag="user", assistant_tag="assistant",
                   observation_tag="tool", function_tag="function_call", system_tag="system")


# The keys of a dataset_info.json entry that say where its data comes from.
SOURCE_KEYS = frozenset({"file_name", "hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name"})


class DatasetSpec(BaseModel):
    """One entry of dataset_info.json (or a file given directly as `dataset`)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    file_name: str | None = None
    hf_hub_url: str | None = None
    ms_hub_url: str | None = None
    om_hub_url: str | None = None
    script_url: str | None = None
    cloud_file_name: str | None = None
    formatting: Literal["alpaca", "sharegpt", "openai", "auto"] = "alpaca"  # auto: direct files only
    ranking: bool = False
    subset: str | None = None
    split: str = "train"
    folder: str | None = None
    num_samples: int | None = None
    weight: float | None = Field(None, gt=0)  # LLaMA-Factory v1's: the row count times this, rows drawn at random
    columns: Columns = Columns()
    tags: Tags = Tags()
    path: Path | None = None  # resolved file or folder

    @property
    def effective_tags(self) -> Tags:
        if self.formatting == "openai" and "tags" not in self.model_fields_set:
            return OPENAI_TAGS
        return self.tags


DATA_SUFFIXES = {".json", ".jsonl", ".csv", ".parquet", ".arrow", ".txt"}


def _read_registry(dataset_dir: Path) -> dict[str, dict]:
    info = dataset_dir / "dataset_info.json"
    if not info.is_file():
        return {}
    try:
        registry = json.loads(read_text(info))
    except json.JSONDecodeError as err:
        raise DataError(f"{info} is not valid JSON: line {err.lineno}, column {err.colno}: {err.msg}") from None
    if not isinstance(registry, dict):
        raise DataError(f"{info} must map dataset names to entries")
    return registry


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def _check_hub_source(spec: DatasetSpec, info: Path, local: str = "`file_name`") -> None:
    """Hub datasets: the Hugging Face hub through `datasets` when reachable, else one clear error (`local`: the
    registry's key for a local file)."""
    other = spec.ms_hub_url or spec.om_hub_url or spec.script_url
    if not spec.hf_hub_url:
        raise DataError(f"{info}: dataset `{spec.name}` comes from {other}; lmforge reads local files and the "
                        f"Hugging Face hub (`hf_hub_url`): download it and set {local}")
    if _offline() and not Path(spec.hf_hub_url).exists():
        raise DataError(f"{info}: dataset `{spec.name}` comes from the hub ({spec.hf_hub_url}) and no hub is "
                        f"reachable (HF_HUB_OFFLINE=1): download it elsewhere and set {local} to the file")


ONLINE = "ONLINE"  # LLaMA-Factory's `dataset_dir` meaning "every dataset name is a hub id"


def _registered(name: str, entry: Any, info: Path, local: str = "`file_name`") -> DatasetSpec:
    """An entry of a registry (`info`: the file that holds it), checked; a hub entry's source checked too."""
    if not isinstance(entry, dict):
        raise DataError(f"{info}: entry `{name}` must be an object")
    try:
        spec = DatasetSpec(name=name, **entry)
    except ValidationError as err:
        problems = "; ".join(f"`{'.'.join(map(str, e['loc']))}`: {e['msg']}" for e in err.errors())
        raise DataError(f"{info}: entry `{name}`: {problems}") from None
    if spec.file_name is None:
        _check_hub_source(spec, info, local)
    return spec


def resolve_datasets(names: list[str], dataset_dir: str | Path) -> list[DatasetSpec]:
    """Each name's `DatasetSpec` (`resolve_dataset`); a LLaMA-Factory v1 dataset file (`.yaml`, named from the
    working directory or inside `dataset_dir`) gives one for each dataset it lists."""
    specs = []
    for name in names:
        if not llamafactory_v1_datasets.is_dataset_file(name):
            specs.append(resolve_dataset(name, dataset_dir))
            continue
        path = Path(name).expanduser()
        if not path.is_file() and not path.is_absolute() and (Path(dataset_dir) / path).is_file():
            path = Path(dataset_dir) / path
        for listed, entry in llamafactory_v1_datasets.entries(path).items():
            spec = _registered(listed, entry, path, local="`path` (with `source: local`)")
            if spec.file_name is not None:
                spec.path = Path(spec.file_name)
                if not spec.path.exists():
                    raise DataError(f"{path}: dataset `{listed}`: file not found: {spec.path} (a local `path` "
                                    "is named from the working directory)")
            specs.append(spec)
    return specs


def resolve_dataset(name: str, dataset_dir: str | Path) -> DatasetSpec:
    """A registered dataset name, or a data file path, as a checked `DatasetSpec`. With `dataset_dir: ONLINE`
    the name is a Hugging Face hub dataset id (alpaca columns unless a local file of that name exists)."""
    if str(dataset_dir) == ONLINE and Path(name).suffix not in DATA_SUFFIXES:
        if _offline() and not Path(name).exists():
            raise DataError(f"`dataset_dir: ONLINE` reads dataset `{name}` from the Hugging Face hub, and no hub is "
                            "reachable (HF_HUB_OFFLINE=1): download it where a hub is reachable, then point "
                            "`dataset` at the file (or register it in a dataset_dir's dataset_info.json)")
        return DatasetSpec(name=name, hf_hub_url=name)
    dataset_dir = Path(dataset_dir)
    registry = _read_registry(dataset_dir)
    info = dataset_dir / "dataset_info.json"
    if name in registry:
        spec = _registered(name, registry[name], info)
        if spec.file_name is None:
            return spec
        path = Path(spec.file_name)
        spec.path = path if path.is_absolute() else dataset_dir / path
    else:
        path = Path(name).expanduser()
        if not path.is_absolute() and not path.exists() and (dataset_dir / path).exists():
            path = dataset_dir / path  # a file kept in dataset_dir, named as LLaMA-Factory's entries name theirs
        if path.suffix not in DATA_SUFFIXES:
            close = difflib.get_close_matches(name, list(registry), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
            known = ", ".join(sorted(registry)[:20]) or "none"
            raise DataError(f"dataset `{name}` is neither registered in {info} nor a data file "
                            f"({', '.join(sorted(DATA_SUFFIXES))}){hint}; registered: {known}")
        # LLaMA-Factory's names for the optional columns, so a file's rows keep their media, tool definitions
        # (OpenAI's fine-tuning rows hold them in `tools`), system prompt and history as registered ones do
        optional = Columns(images="images", videos="videos", audios="audios", tools="tools", system="system",
                           history="history")
        spec = DatasetSpec(name=name, file_name=str(path), formatting="auto", path=path, columns=optional)
    if spec.path is not None and not spec.path.exists():
        where = (f"its `file_name` in {info}" if name in registry else
                 f"looked for from the working directory {Path.cwd()} and in dataset_dir {dataset_dir}"
                 if not path.is_absolute() else "")
        raise DataError(f"dataset `{name}`: file not found: {spec.path}" + (f" ({where})" if where else ""))
    return spec


def check_datasets(data: DataGroup) -> None:
    """Resolve every configured dataset (registry entry and file) without reading rows."""
    resolve_datasets((data.dataset or []) + (data.eval_dataset or []), data.dataset_dir)
