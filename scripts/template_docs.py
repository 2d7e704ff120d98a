"""Regenerate the table in docs/templates.md from the registry and the parity checks.

    PYTHONPATH=src python scripts/template_docs.py          # rewrite docs/templates.md
    PYTHONPATH=src python scripts/template_docs.py --check  # exit 1 when the file is stale

The table is computed by the same `check_case` the tests run (tests/data/template_parity.py), so it
states exactly what the test suite proves. It needs ../shared/refdata (the reference templates).
"""

import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.generated_docs import GeneratedDoc  # noqa: E402
from tests.data.template_cases import ARGUMENTS_AS_JSON_NOTES, CASES, reference_index  # noqa: E402
from tests.data.template_parity import NO_REFERENCE, UNPROVEN_REFERENCES, check_case  # noqa: E402
from tests.data.test_templates_real_tokenizers import PAIRS  # noqa: E402

from lmforge.data.templates import list_templates  # noqa: E402

SMOLLM2_PAIRS = {"chatml", "smollm2", "qwen", "qwen2"}
TOKENIZER_NAMES = {"llama2": "Llama 2 (SentencePiece)", "mistral_v1": "Mistral v1 (SentencePiece)",
                   "mistral_v3": "Mistral v3 (SentencePiece)", "llama3": "Llama 3 (tiktoken)",
                   "qwen": "Qwen (tiktoken)"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table() -> str:
    real = {name: TOKENIZER_NAMES[tokenizer] for name, tokenizer in PAIRS}
    index = reference_index()
    rows = ["| template | reference (provenance) | proven equal: strings + token ids | refused by both | "
            "not proven here (reason); notes | real tokenizer |", "|---|---|---|---|---|---|"]
    totals = Counter()
    unproven = {name: (reference, reason) for reference, name, reason in UNPROVEN_REFERENCES if name}
    for template in list_templates():
        smollm2 = "SmolLM2" if template.name in SMOLLM2_PAIRS else None
        tokenizers = ", ".join(t for t in (real.get(template.name), smollm2) if t)
        aliases = ", ".join(f"`{alias}`" for alias in template.aliases)
        name = f"`{template.name}`" + (f" ({aliases})" if aliases else "")
        if not template.references:
            if template.name in unproven:
                reference, reason = unproven[template.name]
                rows.append(f"| {name} | `{reference}.jinja` ({index[reference]['provenance']}), not proven "
                            f"| loss mask only | | {_cell(reason)} | {tokenizers} |")
            else:
                rows.append(f"| {name} | none in refdata: registered from the model's published format "
                            f"| loss mask only | | {_cell(NO_REFERENCE.get(template.name, ''))} | {tokenizers} |")
            totals["unreferenced"] += 1
            continue
        totals["referenced"] += 1
        for reference in template.references:
            kinds, refused, reasons = Counter(), 0, {}
            for case_name, case in CASES.items():
                for generation in (False, True):
                    outcome = check_case(template, case_name, generation, reference)
                    if outcome.status == "different":
                        raise SystemExit(f"{template.name} / {reference} / {case_name}: {outcome.detail}")
                    if outcome.status == "equal":
                        kinds[case.kind] += 1
                    elif outcome.status == "refused":
                        refused += 1
                    elif not outcome.detail.startswith(("not a reasoning", "the reference has no tool")):
                        reasons[outcome.detail] = None
            if kinds["tools"] and reference in ARGUMENTS_AS_JSON_NOTES:  # how the tool cases were rendered
                reasons[ARGUMENTS_AS_JSON_NOTES[reference]] = None
            proven = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
            totals["checks"] += sum(kinds.values())
            family = "" if reference == template.reference else ", the family's"
            provenance = index[reference]["provenance"]
            rows.append(f"| {name} | `{reference}.jinja` ({provenance}{family}) | {proven} | "
                        f"{refused or ''} | {_cell('; '.join(reasons))} | {tokenizers} |")
    aliases = sum(len(template.aliases) for template in list_templates())
    summary = (f"{totals['referenced'] + totals['unreferenced']} templates (and {aliases} aliases): "
               f"{totals['referenced']} proven against "
               f"the model's or its family's own template ({totals['checks']} conversation renderings equal in text "
               f"and token ids), {totals['unreferenced']} registered from published formats or LLaMA-Factory's "
               "registrations without a proven reference (the reason where refdata has one). "
               "Every template's loss mask is proven (tests/data/test_templates.py).")
    orphans = ["", "Reference templates in refdata that no registered template renders yet:", "",
               "| reference (provenance) | why |", "|---|---|"]
    orphans += [f"| `{reference}.jinja` ({index[reference]['provenance']}) | {_cell(reason)} |"
                for reference, name, reason in sorted(UNPROVEN_REFERENCES) if name is None]
    return "\n".join([summary, "", *rows, *orphans])


DOC = GeneratedDoc(ROOT / "docs" / "templates.md", "scripts/template_docs.py", table)

if __name__ == "__main__":
    sys.exit(DOC.main())
