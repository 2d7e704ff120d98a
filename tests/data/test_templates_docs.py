"""docs/templates.md's table is what the parity checks prove today (regenerate: scripts/template_docs.py)."""

import importlib.util

from tests.conftest import ROOT
from tests.refdata import refdata


def test_docs_table_is_current():
    refdata("chat_templates")
    spec = importlib.util.spec_from_file_location("template_docs", ROOT / "scripts" / "template_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.DOC.render() == module.DOC.current(), (
        "docs/templates.md is stale: run `PYTHONPATH=src python scripts/template_docs.py`")
