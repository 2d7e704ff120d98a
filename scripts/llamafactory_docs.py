"""Regenerate the key table in docs/migrating-from-llamafactory.md from src/lmforge/config/llamafactory_keys.tsv.

    PYTHONPATH=src python scripts/llamafactory_docs.py          # rewrite the doc
    PYTHONPATH=src python scripts/llamafactory_docs.py --check  # exit 1 when the doc is stale
"""

import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.generated_docs import GeneratedDoc  # noqa: E402

from lmforge.config.llamafactory import LLAMAFACTORY_KEYS, LLAMAFACTORY_VALUES, LlamaFactoryKey  # noqa: E402


def _where(entry: LlamaFactoryKey) -> str:
    if entry.status == "implemented":
        return f"`{entry.target}`" + (f": {entry.note}" if entry.note else "")
    if entry.status == "mapped":
        return f"`{entry.target}`: {entry.note}"
    inert = f" (`{entry.default}` accepted: off)" if entry.default else ""
    if entry.status == "refused":
        return f"{entry.note}; use {entry.target}{inert}"
    return entry.note + inert


def table() -> str:
    counts = Counter(entry.status for entry in LLAMAFACTORY_KEYS.values())
    lines = [f"{len(LLAMAFACTORY_KEYS)} keys: " + ", ".join(f"{counts[s]} {s}" for s in
                                                             ("implemented", "mapped", "pending", "refused")) + "."]
    by_class: dict[str, list[LlamaFactoryKey]] = {}
    for entry in LLAMAFACTORY_KEYS.values():
        by_class.setdefault(entry.dataclass, []).append(entry)
    for dataclass, entries in by_class.items():
        lines += ["", f"### {dataclass}", "", "| key | status | in lmforge / feature |", "|---|---|---|"]
        lines += [f"| `{e.key}` | {e.status} | {_where(e).replace('|', '/')} |" for e in entries]
    lines += ["", "### Values of accepted keys", "", "| key: value | status | feature |", "|---|---|---|"]
    lines += [f"| `{v.key}: {v.value}` | {v.status} | {v.note}" + (f"; {v.instead}" if v.instead else "") + " |"
              for v in LLAMAFACTORY_VALUES.values()]
    return "\n".join(lines)


DOC = GeneratedDoc(ROOT / "docs" / "migrating-from-llamafactory.md", "scripts/llamafactory_docs.py", table)

if __name__ == "__main__":
    sys.exit(DOC.main())
