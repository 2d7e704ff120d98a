"""Compare src/lmforge/hub/models.tsv with the model names a LLaMA-Factory checkout registers.

    PYTHONPATH=src python scripts/llamafactory_models.py PATH/TO/llamafactory/extras/constants.py

Prints each name LLaMA-Factory registers that the table lacks, and each hub id that differs; exits 1 when
there are any. The table's rows were made from the same facts (name, hub and ModelScope ids, template,
multimodal flag); new rows are added to the table by hand, with their group and modality.
"""

import ast
import sys
from pathlib import Path

from lmforge.hub.registry import MODELS

HUBS = {"DEFAULT": "hf", "MODELSCOPE": "modelscope"}


def _value(node: ast.expr) -> object:
    """A literal, with `DownloadSource.X` read as the hub it names (None for hubs lmforge does not use)."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "DownloadSource":
        return HUBS.get(node.attr)
    if isinstance(node, ast.Dict):
        return {_value(key): _value(value) for key, value in zip(node.keys, node.values, strict=True) if key}
    return ast.literal_eval(node)


def registered_names(constants: Path) -> dict[str, dict[str, str]]:
    """Display name -> {hub: id} of every `register_model_group(models=...)` call in `constants`."""
    names: dict[str, dict[str, str]] = {}
    for node in ast.walk(ast.parse(constants.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "register_model_group":
            models = next(k.value for k in node.keywords if k.arg == "models")
            for name, sources in _value(models).items():  # type: ignore[union-attr]
                names.setdefault(name, {hub: ref for hub, ref in sources.items() if hub})
    return names


def main(constants: Path) -> int:
    problems = []
    for name, hubs in registered_names(constants).items():
        display = name.split("/")[-1]  # one LLaMA-Factory display name carries its organisation
        if display not in MODELS:
            problems.append(f"missing: {name} {hubs}")
            continue
        sources = MODELS.get(display).sources
        problems += [f"{display}: {hub} is {sources.get(hub)} here, {ref} there"
                     for hub, ref in hubs.items() if sources.get(hub) != ref]
    print("\n".join(problems) or "models.tsv has every name and hub id LLaMA-Factory registers")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
