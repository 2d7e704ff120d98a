"""`--from repair`: find what makes a checkpoint folder load wrongly, explain it, write a clean copy.

What is checked (each is a way transformers silently loads the wrong weights, or fails with
"meta tensor" errors, instead of saying what is wrong):

- two weight formats side by side (`pytorch_model*.bin` next to `model.safetensors[.index.json]`):
  transformers takes the safetensors and ignores the rest, complete or not;
- an index naming shards that are not there, or tensors its shards do not hold, or shards that no
  index names;
- tied weights that disagree with `tie_word_embeddings`: a trained `lm_head` the config would
  overwrite with the embeddings, or a missing `lm_head` the config would leave random.

The clean copy holds one complete safetensors set, the config (fixed where needed) and the
tokenizer and other side files, and is verified by logits like every conversion.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from rich.console import Console

from lmforge.errors import ExportError
from lmforge.export.convert.common import (
    ConversionResult,
    build_model,
    load_tokenizer_if_any,
    read_hf_config,
    save_and_verify,
)

Format = Literal["safetensors", "bin"]
SINGLE = {"safetensors": "model.safetensors", "bin": "pytorch_model.bin"}
INDEX = {"safetensors": "model.safetensors.index.json", "bin": "pytorch_model.bin.index.json"}
SHARDS = {"safetensors": "model-*-of-*.safetensors", "bin": "pytorch_model-*-of-*.bin"}
WRAPPERS = ("module", "state_dict", "model")  # DeepSpeed / Lightning / SAT save the weights one level down


@dataclass
class WeightSet:
    format: Format
    files: list[str]  # shard files the set needs (from the index, or the single file)
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing


def read_tensor_file(path: Path) -> tuple[dict[str, torch.Tensor], str | None]:
    """All tensors of one weight file, and the wrapper key they sat under (if any)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path), None
    loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    for key in WRAPPERS:
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict) and len(loaded) <= 4:
            return loaded[key], key
    return loaded, None


def _tensor_names(path: Path) -> set[str]:
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(path, "pt") as handle:
            return set(handle.keys())
    return set(read_tensor_file(path)[0])


def inspect_set(folder: Path, fmt: Format) -> WeightSet | None:
    """The weight set of one format in `folder`, with what is wrong with it; None when absent."""
    index_file, single = folder / INDEX[fmt], folder / SINGLE[fmt]
    shards = sorted(p.name for p in folder.glob(SHARDS[fmt]))
    if index_file.is_file():
        weight_map: dict[str, str] = json.loads(index_file.read_text())["weight_map"]
        needed = sorted(set(weight_map.values()))
        weights = WeightSet(fmt, needed, missing=[f for f in needed if not (folder / f).is_file()])
        if weights.missing:
            weights.problems.append(f"{index_file.name} names {len(weights.missing)} shard(s) that are not in the "
                                    f"folder: {', '.join(weights.missing)}")
            return weights
        held = {name: shard for shard in needed for name in _tensor_names(folder / shard)}
        if set(held) != set(weight_map) or any(weight_map[n] != held[n] for n in held if n in weight_map):
            weights.problems.append(f"{index_file.name} does not match its shards' contents (tensors listed but "
                                    "absent, held but unlisted, or listed in the wrong shard); it is rebuilt")
        orphans = sorted(set(shards) - set(needed))
        if orphans:
            weights.problems.append(f"shard(s) no index names: {', '.join(orphans)}; left out")
        return weights
    if single.is_file():
        return WeightSet(fmt, [single.name])
    if shards:
        return WeightSet(fmt, shards, missing=[INDEX[fmt]],
                         problems=[f"{len(shards)} {fmt} shard(s) but no {INDEX[fmt]} to say how they fit"])
    return None


def choose_weights(folder: Path, prefer: Format = "safetensors") -> tuple[WeightSet, list[str]]:
    """The complete weight set to use, and the explained findings."""
    sets = {fmt: found for fmt in ("safetensors", "bin") if (found := inspect_set(folder, fmt))}  # type: ignore[arg-type]
    notes = [f"found: {problem}" for found in sets.values() for problem in found.problems]
    if not sets:
        raise ExportError(f"{folder} holds no weights: expected model.safetensors, pytorch_model.bin or their "
                          "sharded forms with an index")
    if len(sets) == 2:
        notes.append("found: safetensors and .bin weights side by side. transformers loads only the safetensors "
                     "set; where that set is incomplete, the layers it lacks stay on the meta device ('meta tensor' "
                     "errors) or are randomly initialised. Fix: the clean copy keeps one complete set")
    order = [prefer] + [fmt for fmt in sets if fmt != prefer]
    for fmt in order:
        if fmt in sets and sets[fmt].complete:
            if len(sets) == 2:
                notes.append(f"fix: using the complete {fmt} set ({len(sets[fmt].files)} file(s))")
            return sets[fmt], notes
    missing = "; ".join(f"{fmt}: {', '.join(s.missing)}" for fmt, s in sets.items())
    raise ExportError(f"{folder} has no complete set of weights ({missing}): copy the missing files from where "
                      "the checkpoint came from; they cannot be recreated")


def load_set(folder: Path, weights: WeightSet, notes: list[str]) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for name in weights.files:
        tensors, wrapper = read_tensor_file(folder / name)
        if wrapper:
            notes.append(f"found: the weights in {name} sit under a `{wrapper}` key; fix: unwrapped")
        state.update(tensors)
    return state


def fix_tied_weights(config: object, state: dict[str, torch.Tensor], notes: list[str]) -> None:
    """Make `tie_word_embeddings` agree with the stored output head."""
    text = config.get_text_config()  # type: ignore[attr-defined]
    embed = next((v for k, v in state.items() if k.endswith("embed_tokens.weight")), None)
    head = state.get("lm_head.weight")
    if embed is None:
        return
    if text.tie_word_embeddings and head is not None and not torch.equal(head, embed):
        notes.append("found: tie_word_embeddings is true but the checkpoint holds its own, different lm_head; "
                     "transformers would overwrite it with the embeddings. Fix: tie_word_embeddings set to false")
        text.tie_word_embeddings = False
        config.tie_word_embeddings = False  # type: ignore[attr-defined]
    elif not text.tie_word_embeddings and head is None:
        notes.append("found: tie_word_embeddings is false but there is no lm_head.weight; transformers would leave "
                     "the output head random. Fix: tie_word_embeddings set to true (the head is the embeddings)")
        text.tie_word_embeddings = True
        config.tie_word_embeddings = True  # type: ignore[attr-defined]


def convert(source: Path, out_dir: Path, *, config: Path | None = None, console: Console | None = None,
            prefer: Format = "safetensors") -> ConversionResult:
    if not source.is_dir():
        raise ExportError(f"{source} is not a folder: repair works on a checkpoint folder")
    hf_config = read_hf_config(source, what=f"checkpoint {source}", config_path=config)
    weights, notes = choose_weights(source, prefer)
    state = load_set(source, weights, notes)
    fix_tied_weights(hf_config, state, notes)
    model = build_model(hf_config, state, what=f"checkpoint {source}")
    if not any(note.startswith("fix:") or "Fix:" in note for note in notes) and prefer == "safetensors":
        notes.append(f"no problems found in {source}; the copy is the same model")
    return save_and_verify(model, out_dir, what=f"{weights.format} weights of {source.name}",
                           tokenizer=load_tokenizer_if_any(source), side_files=source, notes=notes, console=console)
