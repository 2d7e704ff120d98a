"""What the web UI's dropdowns offer: registered models and local model folders, the datasets of a
dataset_info.json, the adapters and checkpoints of a run folder, the stages."""

import json
from pathlib import Path

PACKAGED_DATA = Path(__file__).resolve().parent / "data"  # the identity dataset, usable from any folder
MODEL_FILES = ("config.json", "adapter_config.json")
LOCAL_MODEL_DIRS = (".", "models", "saves", "output", "outputs")  # under the UI's working folder


def registered_models() -> list[str]:
    """The registry's names, the builtin models (usable offline, no download) first."""
    from lmforge.hub.registry import list_models

    models = list_models()
    return [m.name for m in models if m.group == "builtin"] + [m.name for m in models if m.group != "builtin"]


def local_model_folders(workdir: Path) -> list[str]:
    """Folders with a config.json one level below the usual places (runs with adapters count too)."""
    found: list[str] = []
    for name in LOCAL_MODEL_DIRS:
        base = (workdir / name).resolve()
        if not base.is_dir():
            continue
        for folder in sorted(base.iterdir()):
            if folder.is_dir() and (folder / "config.json").is_file():
                found.append(str(folder))
    return list(dict.fromkeys(found))


def model_info(name_or_path: str) -> tuple[str | None, bool | None]:
    """(template, multimodal) of a registered model, or of a local folder from its config.json."""
    from lmforge.data.templates.select import default_template_name
    from lmforge.hub.registry import find_model

    model = find_model(name_or_path)
    if model is not None:
        return default_template_name(name_or_path), model.multimodal
    config = Path(name_or_path) / "config.json"
    if config.is_file():
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None, None
        return None, "vision_config" in data or "audio_config" in data
    return None, None


def dataset_names(dataset_dir: str) -> list[str]:
    """The dataset names registered in dataset_dir/dataset_info.json (none when it is missing or broken)."""
    path = Path(dataset_dir or ".") / "dataset_info.json"
    try:
        return sorted(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, TypeError):
        return []


def run_folders(output_dir: str) -> list[str]:
    """Adapters and models a run wrote: output_dir itself, its checkpoints, and sibling runs."""
    if not output_dir:
        return []
    out = Path(output_dir).resolve()
    candidates = [out, *sorted(out.glob("checkpoint-*"))]
    if out.parent.is_dir():
        candidates += sorted(p for p in out.parent.iterdir() if p.is_dir() and p != out)
    return [str(p) for p in candidates if p.is_dir() and any((p / f).is_file() for f in MODEL_FILES)]


def stage_names() -> list[str]:
    from lmforge.train.stages import STAGES

    return [stage.name for stage in STAGES.entries()]


def stage_plots(name: str) -> tuple[str, ...]:
    """The metrics the stage plots (`training_<metric>.png`), which the Train tab draws live."""
    from lmforge.errors import LmforgeError
    from lmforge.serve.webui.outputs import PLOTTED
    from lmforge.train.stages import STAGES

    try:
        return STAGES.get(name).plots
    except LmforgeError:  # a stage name being typed
        return PLOTTED
