"""docs/migrating-from-llamafactory.md's key table is the key data (regenerate: scripts/llamafactory_docs.py)."""

import importlib.util

from lmforge.config.llamafactory import LLAMAFACTORY_KEYS
from tests.conftest import ROOT


def _script():
    spec = importlib.util.spec_from_file_location("llamafactory_docs", ROOT / "scripts" / "llamafactory_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_migration_doc_key_table_is_current():
    module = _script()
    assert module.DOC.render() == module.DOC.current(), (
        "docs/migrating-from-llamafactory.md is stale: run `PYTHONPATH=src python scripts/llamafactory_docs.py`")


def test_migration_doc_lists_every_key():
    text = _script().DOC.current()
    assert all(f"| `{key}` |" in text for key in LLAMAFACTORY_KEYS)
