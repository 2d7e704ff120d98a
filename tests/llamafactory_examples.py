"""LLaMA-Factory's v0.9.3 example configs as a user runs them here: the YAML as shipped, with only the model, data
and output paths changed, plus a one-step smoke-run size."""

from pathlib import Path
from typing import Any

import yaml

from tests.refdata import refdata

SMOKE_RUN = {"max_steps": 1, "max_samples": 4, "cutoff_len": 128, "logging_steps": 1, "save_strategy": "no"}
# keys that point at a path of the user's machine (LLaMA-Factory's `saves/...`, `data`, `output/...`)
OUTPUT_KEYS = ("output_dir", "export_dir", "tokenized_path", "ray_storage_path")


def example(path: str, tmp_path: Path, model: str, **paths: Any) -> dict[str, Any]:
    """The example at `path` (under examples/) with `model`, the demo data, outputs under `tmp_path` and, for a
    training config, the smoke-run size; `paths`: the other paths to set (adapter_name_or_path, deepspeed)."""
    raw = yaml.safe_load(refdata("llamafactory_examples_v0.9.3", *path.split("/")).read_text())
    raw["model_name_or_path"] = model
    raw.update({key: str(tmp_path / key) for key in OUTPUT_KEYS if key in raw})
    if "dataset" in raw:
        raw.update(dataset_dir=str(refdata("llamafactory_data")), **SMOKE_RUN)
    return {**raw, **paths}
