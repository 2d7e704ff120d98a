"""The layers below the runner (hub, data, model) take the config groups they read and plain values, never
the whole config: what they need to know about the run (cutoff_len, seed, sharding, preserve_thinking)
is handed in by the caller, so their code cannot grow hidden reads of other groups' keys."""

import ast
from pathlib import Path

import pytest

import lmforge

PACKAGE = Path(lmforge.__file__).parent


def imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("layer", ["hub", "data", "model"])
def test_no_lower_layer_module_imports_the_whole_config(layer):
    modules = sorted((PACKAGE / layer).rglob("*.py"))
    assert len(modules) > 5
    offenders = [str(path.relative_to(PACKAGE)) for path in modules if "LmforgeConfig" in imported_names(path)]
    assert offenders == []
