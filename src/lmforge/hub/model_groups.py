"""What a model group is, and the builtin registrations: the table `models.tsv` beside this module.

One row per display name: `name`, `group` (the family it belongs to), `template` (its default chat template;
empty: `template: auto`, or the builtin model's own), `modality` (`text`, or the media it takes:
`image`, `image,video`, `audio`, ...), its sources (`hf` and `modelscope` hub ids, `builtin` names a builtin
model) and a `note`. Data only: hub/registry.py registers each row (and anyone may add a group with
`register_model_group`).

The names, hub ids, templates and modalities are LLaMA-Factory's (every name it registers), so its users find
the ones they know; where lmforge has a more exact template it is named instead (Qwen2 -> `qwen2`, QwQ-32B ->
`qwq`), and MedGemma-27B-Instruct, which LLaMA-Factory registers twice, keeps its text-only registration.
"""

import csv
from dataclasses import dataclass
from pathlib import Path

from lmforge.errors import ModelError

TABLE_PATH = Path(__file__).resolve().parent / "models.tsv"
COLUMNS = ("name", "group", "template", "modality", "hf", "modelscope", "builtin", "note")
MEDIA = ("image", "video", "audio")
SOURCE_COLUMNS = ("hf", "modelscope", "builtin")


@dataclass(frozen=True)
class ModelGroup:
    """Display names with their sources (`hf`, `modelscope`, `local`, `builtin`); all share `template` and
    `modality` ("text", or the media the models take, comma-separated). `group` defaults to each name's first
    dash-separated word."""

    models: dict[str, dict[str, str]]
    template: str | None = None
    modality: str = "text"
    group: str | None = None
    description: str = ""


def check_modality(modality: str) -> str | None:
    """None when `modality` is `text` or a comma-separated list of media, else what is wrong."""
    if modality == "text":
        return None
    unknown = [kind for kind in modality.split(",") if kind not in MEDIA]
    return f"modality `{modality}`: {', '.join(unknown)} not one of text, {', '.join(MEDIA)}" if unknown else None


def read_table(path: Path = TABLE_PATH) -> list[ModelGroup]:
    """Each row of the table as a one-name group, in the table's order."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ModelError(f"{path}: columns must be {', '.join(COLUMNS)} (got {reader.fieldnames})")
        groups = []
        for line, row in enumerate(reader, start=2):
            sources = {source: row[source] for source in SOURCE_COLUMNS if row[source]}
            problem = check_modality(row["modality"]) or (None if sources else "no hf, modelscope or builtin source")
            if problem or not row["name"] or not row["group"]:
                raise ModelError(f"{path}, row {line} ({row['name'] or 'no name'}): "
                                      f"{problem or 'name and group are required'}")
            groups.append(ModelGroup({row["name"]: sources}, row["template"] or None, row["modality"], row["group"],
                                     row["note"]))
    return groups


GROUPS = read_table()
