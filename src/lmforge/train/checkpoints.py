"""Checkpoints that cannot look complete unless they are.

transformers writes `checkpoint-N/` file by file, so a crash mid-save leaves a folder that its
`get_last_checkpoint` would resume from. After each save we write `lmforge_complete.json` (file
names and sizes) atomically (temporary file + rename); resuming only considers checkpoints whose
marker matches their files, and moves incomplete ones aside as `checkpoint-N.incomplete`.
"""

import json
import os
import re
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from lmforge.errors import ConfigError
from lmforge.paths import share_weight_files

MARKER = "lmforge_complete.json"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def _inventory(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MARKER}


def mark_complete(folder: Path) -> None:
    temporary = folder / f".{MARKER}.tmp"
    temporary.write_text(json.dumps({"files": _inventory(folder)}, indent=1))
    os.replace(temporary, folder / MARKER)


def is_complete(folder: Path) -> bool:
    marker = folder / MARKER
    if not marker.is_file():
        return False
    try:
        recorded = json.loads(marker.read_text())["files"]
    except (json.JSONDecodeError, KeyError):
        return False
    current = _inventory(folder)
    return all(current.get(name) == size for name, size in recorded.items())


def check_resume_checkpoint(path: str) -> None:
    """An explicit `resume_from_checkpoint` is a checkpoint folder a Trainer saved (transformers refuses any other,
    after the model has loaded)."""
    folder = Path(path)
    unset = "or remove the key: lmforge resumes from output_dir's newest complete checkpoint by itself"
    if not folder.is_dir():
        raise ConfigError(f"`resume_from_checkpoint: {path}`: no such folder; name a `checkpoint-N` folder of an "
                          f"earlier run's output_dir, {unset}")
    if (folder / "trainer_state.json").is_file():
        return
    saved = sorted((int(m.group(1)), p.name) for p in folder.iterdir() if (m := _CHECKPOINT.match(p.name)))
    newest = f" (the newest here: {folder / saved[-1][1]})" if saved else ""
    raise ConfigError(f"`resume_from_checkpoint: {path}` is not a training checkpoint (no trainer_state.json): name "
                      f"a `checkpoint-N` folder{newest}, {unset}")


def last_complete_checkpoint(output_dir: Path) -> tuple[Path | None, list[Path]]:
    """(newest complete checkpoint, incomplete ones moved aside)."""
    if not output_dir.is_dir():
        return None, []
    found = sorted(((int(m.group(1)), p) for p in output_dir.iterdir()
                    if p.is_dir() and (m := _CHECKPOINT.match(p.name))), reverse=True)
    moved: list[Path] = []
    newest = None
    for _, folder in found:
        if is_complete(folder):
            newest = newest or folder
        else:
            target = folder.with_name(folder.name + ".incomplete")
            os.replace(folder, target)
            moved.append(target)
    return newest, moved


class CheckpointCompletionCallback(TrainerCallback):
    """Marks each checkpoint complete once the Trainer has written all of it."""

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **_: Any) -> None:
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                share_weight_files(folder)
                mark_complete(folder)
