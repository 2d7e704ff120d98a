"""Content-addressed cache of preprocessed datasets.

The key covers everything the result depends on: the raw data files' bytes, the tokenizer
(its full serialisation, chat template and special tokens), the template, every data option,
the stage, the seed, and the lmforge data code itself. Same inputs -> same key -> reuse in about
a second; any change -> a new key -> re-tokenize. Nothing can be stale.
"""

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

from datasets import Dataset, load_from_disk
from transformers import PreTrainedTokenizerBase

import lmforge
from lmforge.data.loading import load_hub_dataset
from lmforge.data.registry import DatasetSpec
from lmforge.data.templates.template import Template
from lmforge.paths import lmforge_home


def file_digest(path: Path, digest: "hashlib._Hash") -> None:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.name).encode())
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)


def code_digest() -> str:
    digest = hashlib.sha256(lmforge.__version__.encode())
    root = resources.files("lmforge.data")
    for path in sorted(Path(str(root)).rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.json", "merges.txt", "tokenizer.model", "chat_template.jinja", "chat_template.json")


def tokenizer_digest(tokenizer: PreTrainedTokenizerBase) -> str:
    """The tokenizer's files (hashing them is ~20x faster than serialising a large vocabulary),
    plus its in-memory special tokens and chat template, which loading may have changed."""
    digest = hashlib.sha256()
    folder = Path(str(tokenizer.name_or_path))
    files = [folder / name for name in TOKENIZER_FILES if (folder / name).is_file()] if folder.is_dir() else []
    if files:
        for file in files:
            file_digest(file, digest)
    else:  # built in memory: serialise it
        backend = getattr(tokenizer, "backend_tokenizer", None)
        digest.update(backend.to_str().encode() if backend is not None else repr(tokenizer.get_vocab()).encode())
    digest.update(json.dumps(tokenizer.special_tokens_map, sort_keys=True, default=str).encode())
    digest.update(str(tokenizer.chat_template).encode())
    return digest.hexdigest()


def cache_key(specs: list[DatasetSpec], tokenizer: PreTrainedTokenizerBase, template: Template | None,
              options: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    for spec in specs:
        digest.update(spec.model_dump_json(exclude={"path"}).encode())
        if spec.path is not None:
            file_digest(spec.path, digest)
        else:  # a hub dataset: datasets' own fingerprint of the downloaded content
            digest.update(load_hub_dataset(spec)._fingerprint.encode())
    digest.update(tokenizer_digest(tokenizer).encode())
    digest.update(json.dumps(asdict(template) if template else None, sort_keys=True, default=str).encode())
    digest.update(json.dumps(options, sort_keys=True, default=str).encode())
    digest.update(code_digest().encode())
    return digest.hexdigest()[:24]


def cache_dir(key: str) -> Path:
    return lmforge_home() / "datasets" / key


def save_prepared(folder: Path, train: Dataset, evaluation: Dataset | None, report: dict[str, Any]) -> None:
    """Write atomically: a temporary folder renamed into place, so a crash never leaves half a cache."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        train.save_to_disk(str(staging / "train"))
        if evaluation is not None:
            evaluation.save_to_disk(str(staging / "eval"))
        (staging / "report.json").write_text(json.dumps(report, indent=1))
        if folder.exists():
            if (folder / "report.json").is_file():
                return  # another process (a distributed worker) wrote the same content first
            shutil.rmtree(folder)
        try:
            os.replace(staging, folder)
        except OSError:
            if not (folder / "report.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def wait_for_prepared(folder: Path, timeout_s: float,
                      poll_s: float = 0.5) -> tuple[Dataset, Dataset | None, dict[str, Any]] | None:
    """`load_prepared` once another process has saved `folder`, polling up to `timeout_s` (None: not in time)."""
    deadline = time.monotonic() + timeout_s
    while (hit := load_prepared(folder)) is None and time.monotonic() < deadline:
        time.sleep(poll_s)
    return hit


def load_prepared(folder: Path) -> tuple[Dataset, Dataset | None, dict[str, Any]] | None:
    if not (folder / "report.json").is_file():
        return None
    train = load_from_disk(str(folder / "train"))
    evaluation = load_from_disk(str(folder / "eval")) if (folder / "eval").is_dir() else None
    return train, evaluation, json.loads((folder / "report.json").read_text())
