"""Run `lmforge` as on a machine without some installed packages: `sitecustomize` marks them absent
(`sys.modules[name] = None`), so `import name` fails and `importlib.util.find_spec(name)` finds nothing."""

import os
from pathlib import Path

import pytest


def hide_packages(monkeypatch: pytest.MonkeyPatch, folder: Path, *names: str) -> None:
    """Commands started after this call (through PYTHONPATH) see none of `names`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text("import sys\n\n" + "".join(
        f"sys.modules[{name!r}] = None\n" for name in names))
    monkeypatch.setenv("PYTHONPATH", f"{folder}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
