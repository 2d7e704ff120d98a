"""Content-addressed cache of processed media: each example's media decoded and processed once, ever.

What the collator spends on a media row is the processor (resize, normalise, patchify: ~40 ms per
image on the tiny Qwen2.5-VL of `bench/multimodal_sft.py`, against ~6 ms to decode the file), and it
spent it again every epoch. The cache keeps an example's `ProcessedMedia` (each item's token run and
tensors) on disk under a key that covers everything they depend on: the media files' bytes, the media
options, the processor's configuration and tokenizer, the plugin and the lmforge data code. Same
inputs, same key; any change, a new key: nothing can be stale. Entries are written atomically, so
dataloader workers and distributed processes share them. Media given as bytes or PIL images (chat,
the API) are not cached.

The folder is capped (`media_cache_max_gb`): a read marks its entry used (its modification time), and a
write that takes the folder past the cap removes the least recently used entries down to 90% of it. Each
process counts what it wrote since it last measured the folder, so the folder may pass the cap by what
other processes wrote since, until one of them measures it.

An entry is a safetensors file (the tensors; the token runs and any other JSON-able value in its header),
read through a memory map: `torch.load`'s unpickler cost more per image than the tiny model's processor.
"""

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from lmforge.data.cache import code_digest, file_digest, tokenizer_digest
from lmforge.data.multimodal.media import MediaOptions
from lmforge.data.multimodal.plugin import ProcessedMedia
from lmforge.paths import lmforge_home


def media_cache_dir() -> Path:
    return lmforge_home() / "media"


class MediaCache:
    """Processed media of one processor, plugin and set of media options, in `folder`."""

    def __init__(self, processor: Any, plugin_name: str, options: MediaOptions, folder: Path | None = None,
                 max_bytes: int | None = None) -> None:
        self.folder = folder or media_cache_dir()
        self.max_bytes = max_bytes  # None: no cap
        self._size: int | None = None  # the folder's bytes as this process knows them (None: not measured yet)
        digest = hashlib.sha256()
        digest.update(processor.to_json_string().encode())  # the image/video/audio processors' settings
        digest.update(tokenizer_digest(processor.tokenizer).encode())  # runs are decoded token text
        digest.update(json.dumps([plugin_name, asdict(options)], sort_keys=True).encode())
        digest.update(code_digest().encode())
        self.scope = digest.hexdigest()
        self._files: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> bytes digest, per process

    def key(self, media: dict[str, list[Any]]) -> str | None:
        """The entry of an example's media (None: an item is not a local file)."""
        digest = hashlib.sha256(self.scope.encode())
        for kind in sorted(media):
            for item in media[kind]:
                if not isinstance(item, str) or not os.path.isfile(item):
                    return None
                digest.update(f"{kind}\0{self._file(item)}\0".encode())
        return digest.hexdigest()

    def _file(self, path: str) -> str:
        stat = os.stat(path)
        known = (path, stat.st_size, stat.st_mtime_ns)
        if known not in self._files:
            digest = hashlib.sha256()
            file_digest(Path(path), digest)
            self._files[known] = digest.hexdigest()
        return self._files[known]

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}{SUFFIX}"

    def get(self, key: str) -> ProcessedMedia | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            with safe_open(path, "pt") as entry:  # one memory-mapped read: the header, then each tensor
                header = json.loads(entry.metadata()["lmforge"])
                items = {kind: [{name: entry.get_tensor(f"{kind}/{index}/{name}") if name in named else values[name]
                                 for name in order}
                                for index, (order, named, values) in enumerate(described)]
                         for kind, described in header["tensors"].items()}
        except (OSError, SafetensorError, KeyError, ValueError):  # unreadable (or evicted meanwhile): processed again
            return None
        with contextlib.suppress(OSError):  # a read-only cache is still read, only not reordered
            os.utime(path)  # used now: the last to be evicted
        return ProcessedMedia(header["runs"], items)

    def put(self, key: str, processed: ProcessedMedia) -> None:
        encoded = _encode(processed)
        if encoded is None:  # a value neither a tensor nor JSON: processed anew each time rather than mangled
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, staging = tempfile.mkstemp(prefix=f".{key}-", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(encoded)
            os.replace(staging, path)  # whole or absent: a reader never sees half an entry
        finally:
            if os.path.exists(staging):
                os.remove(staging)
        if self.max_bytes is not None:
            if self._size is None:
                self._size = _entries_size(self.folder)[1]  # this entry included
            else:
                self._size += len(encoded)
            if self._size > self.max_bytes:
                self._size = evict(self.folder, int(self.max_bytes * 0.9))


SUFFIX = ".safetensors"
_LEGACY_SUFFIX = ".pt"  # entries of earlier versions (torch.save): never read, evicted like the others


def _encode(processed: ProcessedMedia) -> bytes | None:
    """The entry's bytes: each item's tensors under `kind/index/name`, and in the header the runs, each item's
    key order, which keys are tensors and the other values (None: a value that JSON would not give back)."""
    tensors, described = {}, {}
    for kind, items in processed.tensors.items():
        described[kind] = []
        for index, item in enumerate(items):
            named = [name for name, value in item.items() if isinstance(value, torch.Tensor)]
            values = {name: value for name, value in item.items() if name not in named}
            try:
                if json.loads(json.dumps(values)) != values:  # tuples, for one, would come back as lists
                    return None
            except (TypeError, ValueError):
                return None
            described[kind].append([list(item), named, values])
            for name in named:  # safetensors stores each tensor whole and unshared
                tensors[f"{kind}/{index}/{name}"] = item[name].detach().cpu().contiguous().clone()
    header = json.dumps({"runs": processed.runs, "tensors": described})
    return save(tensors, metadata={"lmforge": header})


def _entries_size(folder: Path) -> tuple[list[tuple[float, int, Path]], int]:
    """The folder's entries as (last used, bytes, path), and their total bytes."""
    entries = []
    for path in [*folder.glob(f"*/*{SUFFIX}"), *folder.glob(f"*/*{_LEGACY_SUFFIX}")]:
        try:
            stat = path.stat()
        except FileNotFoundError:  # evicted by another process meanwhile
            continue
        entries.append((stat.st_mtime, stat.st_size, path))
    return entries, sum(size for _, size, _ in entries)


def evict(folder: Path, keep_bytes: int) -> int:
    """Remove the least recently used entries until at most `keep_bytes` remain; the bytes that remain."""
    entries, total = _entries_size(folder)
    for _, size, path in sorted(entries, key=lambda entry: entry[0]):
        if total <= keep_bytes:
            break
        path.unlink(missing_ok=True)  # a reader that opened it already keeps its data
        total -= size
    return total
