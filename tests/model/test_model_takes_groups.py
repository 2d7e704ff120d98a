"""The model layer takes the config groups it reads (model, finetuning) and plain values, never the whole
config: what a load needs to know about the run (cutoff_len, seed, sharding, output_dir) is handed in by
the caller, so model code cannot grow hidden reads of training or data keys."""

import ast
from pathlib import Path

import lmforge.model

MODEL_PACKAGE = Path(lmforge.model.__file__).parent


def imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names.update(alias.name for alias in node.names)
    return names


def test_no_model_module_imports_the_whole_config():
    modules = sorted(MODEL_PACKAGE.glob("*.py"))
    assert len(modules) > 10
    offenders = [path.name for path in modules if "LmforgeConfig" in imported_names(path)]
    assert offenders == []
