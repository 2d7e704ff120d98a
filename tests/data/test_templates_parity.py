"""Every template with a reference renders exactly what the model's own chat_template renders.

For each (template, conversation) pair: equal strings with and without a generation prompt, and
equal token ids (training's ids, and ids encoded segment by segment, equal the ids of tokenizing the
reference rendering). Where the reference refuses a conversation (`raise_exception`), ours must refuse
it too. Cases a reference cannot express are skipped with the reason; DEVIATIONS in
tests/data/template_parity.py lists where lmforge deliberately differs (docs/templates.md shows them).
"""

import pytest

from lmforge.data.templates import list_templates
from tests.data.template_cases import relevant_cases
from tests.data.template_parity import check_case

CHECKS = [(template, reference, case_name) for template in list_templates() for reference in template.references
          for case_name in relevant_cases(template)]


@pytest.mark.parametrize("template, reference, case_name", CHECKS,
                         ids=[f"{t.name}={r}-{c}" for t, r, c in CHECKS])
@pytest.mark.parametrize("generation_prompt", [False, True], ids=["full", "prompt"])
def test_render_equals_reference(template, reference, case_name, generation_prompt):
    outcome = check_case(template, case_name, generation_prompt, reference)
    assert outcome.status != "different", outcome.detail
    if outcome.status != "equal":
        pytest.skip(outcome.detail)
