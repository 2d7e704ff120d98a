"""Every key of LLaMA-Factory's argument dataclasses and where it goes in lmforge.

The data lives in `llamafactory_keys.tsv` (one row per key): `implemented` keys are lmforge keys of the
same name, `mapped` keys are rewritten into the lmforge key named in `target` before validation,
`pending` keys are recognised but not built yet, and `refused` keys belong to hardware lmforge does not
run on or to a feature it leaves to a better tool, for the reason the note gives (the `target` column names
what to use instead). A pending or refused key set to LLaMA-Factory's
default (`default`, JSON; empty where that default is itself a behaviour lmforge lacks) leaves its feature
off, which is what lmforge does anyway: it is accepted and dropped, so configs written out in full (as
LlamaBoard saves them) still load. docs/migrating-from-llamafactory.md is generated
from the same data (`scripts/llamafactory_docs.py`).
"""

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

KEYS_PATH = Path(__file__).resolve().parent / "llamafactory_keys.tsv"
VALUES_PATH = Path(__file__).resolve().parent / "llamafactory_values.tsv"  # values of accepted keys not built yet
Status = Literal["implemented", "mapped", "pending", "refused"]


@dataclass(frozen=True)
class LlamaFactoryKey:
    key: str
    dataclass: str  # the LLaMA-Factory dataclass that declares it
    status: Status
    target: str  # implemented/mapped: `group.key` in lmforge; refused: what to use instead
    default: str  # pending/refused: LLaMA-Factory's default as JSON, accepted because it is inert; "" for none
    note: str  # mapped: how the value translates; pending/refused: the feature's name

    def is_inert(self, value: Any) -> bool:
        """A pending/refused key at LLaMA-Factory's default: the feature stays off, as it is in lmforge."""
        if self.status not in ("pending", "refused") or not self.default:
            return False
        default = json.loads(self.default)
        if isinstance(default, bool) or isinstance(value, bool):
            return value is default
        if isinstance(default, (int, float)) and isinstance(value, (int, float)):
            return value == default
        return type(value) is type(default) and value == default


@dataclass(frozen=True)
class LlamaFactoryValue:
    key: str
    value: str
    status: Literal["pending", "refused"]
    note: str  # the feature's name
    instead: str  # refused: why, and what to use instead; pending: what to use meanwhile (optional)

    def message(self) -> str:
        if self.status == "refused":
            return f"`{self.key}: {self.value}` is {self.note}, which lmforge does not offer: {self.instead}"
        return (f"`{self.key}: {self.value}` is {self.note}, which lmforge does not support yet; "
                + (self.instead or "choose another value"))


def _read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


LLAMAFACTORY_KEYS: dict[str, LlamaFactoryKey] = {
    row["key"]: LlamaFactoryKey(**row) for row in _read_rows(KEYS_PATH)  # type: ignore[arg-type]
}
LLAMAFACTORY_VALUES: dict[tuple[str, str], LlamaFactoryValue] = {
    (row["key"], row["value"]): LlamaFactoryValue(**row) for row in _read_rows(VALUES_PATH)  # type: ignore[arg-type]
}

# The feature each recognised-but-unsupported key belongs to.
PENDING_KEYS: dict[str, str] = {
    entry.key: entry.note for entry in LLAMAFACTORY_KEYS.values() if entry.status in ("pending", "refused")
}


def not_supported_message(key: str) -> str | None:
    """Why a LLaMA-Factory key is not accepted, with what to do instead; None for keys lmforge accepts."""
    entry = LLAMAFACTORY_KEYS.get(key)
    if entry is None or entry.status in ("implemented", "mapped"):
        return None
    inert = f" (or set it to its default, {entry.default})" if entry.default else ""
    if entry.status == "refused":
        return (f"`{key}` belongs to {entry.note}, which lmforge does not offer; "
                f"use {entry.target} instead, and remove the key{inert}")
    return f"`{key}` belongs to {entry.note}, which lmforge does not support yet; remove the key{inert}"


def _tokens_in_file(path: Any) -> dict[str, str]:
    """The tokens of a `new_special_tokens_config` file and their descriptions: a YAML mapping of token to
    description."""
    file = Path(str(path))
    if not file.is_file():
        raise ValueError(f"no such file: {file}")
    try:
        descriptions = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"{file} is not valid YAML: {err}") from None
    if not isinstance(descriptions, dict) or not descriptions:
        raise ValueError(f"{file} must map each new special token to a description (`\"<|tok|>\": what it marks`)")
    return {str(token): str(description) for token, description in descriptions.items()}


def _switch(value: Any) -> bool:
    """A true/false switch (YAML booleans only: `"false"` must not read as true)."""
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {value!r}")
    return value


KEEP = object()  # a translation's answer for "this value asks for nothing": the lmforge key keeps its own value


def _sortish(on: Any) -> Any:
    """transformers' length-grouped sampler: batches of similar lengths from shuffled chunks, as the sortish
    sampler drew them; off asks for nothing (the sampling strategy stays what `disable_shuffling` says)."""
    return "group_by_length" if _switch(on) else KEEP


# How each mapped key's value becomes its lmforge key's value (identity when absent); ValueError: a bad value.
_TRANSLATE: dict[str, Callable[[Any], Any]] = {
    "sortish_sampler": _sortish,
    "new_special_tokens_config": _tokens_in_file,
    "disable_gradient_checkpointing": lambda disabled: not _switch(disabled),
    "use_reentrant_gc": lambda reentrant: {"use_reentrant": _switch(reentrant)},
    "disable_shuffling": lambda sequential: "sequential" if _switch(sequential) else "random",
}


def translate_llamafactory(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """`raw` with mapped keys rewritten to their lmforge keys and inert keys (unsupported features left off)
    dropped; also which lmforge key came from which LLaMA-Factory key (for messages), and problems (both
    names set, a value that cannot be translated, a value of a feature not built yet)."""
    out: dict[str, Any] = {}
    came_from: dict[str, str] = {}
    problems: list[str] = []
    for key, value in raw.items():
        entry = LLAMAFACTORY_KEYS.get(str(key))
        if entry is None or entry.status != "mapped":
            continue
        target = entry.target.split(".", 1)[1]
        try:
            translated = _TRANSLATE.get(str(key), lambda v: v)(value)
        except ValueError as err:
            problems.append(f"`{key}`: {err}")
            continue
        if translated is KEEP:
            continue
        if target in raw or target in out:
            problems.append(f"`{key}` and `{target}` set the same thing ({entry.note}): keep only `{target}`")
            continue
        out[target], came_from[target] = translated, str(key)
    for key, value in raw.items():
        entry = LLAMAFACTORY_KEYS.get(str(key))
        if (pending := LLAMAFACTORY_VALUES.get((str(key), str(value)))) is not None:
            problems.append(pending.message())
        elif entry is None or not (entry.status == "mapped" or entry.is_inert(value)):
            out[key] = value
    return out, came_from, problems
