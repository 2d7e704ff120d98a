"""Every template with a reference renders exactly what the model's own chat_template renders.

For each (template, conversation) pair: equal strings with and without a generation prompt, and
equal token ids (training's ids, and ids encoded segment by segment, equal the ids of tokenizing the
reference rendering). Where the reference refuses a conversation (`raise_exception`), ours must refuse
it too. Cases a reference cannot express are skipped with the reason; DEVIATIONS in
tests/data/template_parity.py lists where lmforge deliberately differs (docs/templates.md shows them).
"""

import html
from dataclasses import replace

import pytest

from lmforge.data.templates import get_template, list_templates
from tests.data.template_cases import CASES, reference_jinja, relevant_cases, render_ours, render_reference
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


def test_mistral_common_v7_escapes_dict_arguments_in_transformers():
    """Why the v7 reference gets its calls' arguments as JSON strings (template_cases.ARGUMENTS_AS_JSON):
    given dicts, transformers' rendering HTML-escapes the call around them, and only that."""
    template = get_template("mistral_tekken")
    case = CASES["tool calls with system and text"]
    case = replace(case, messages=template.with_call_ids(case.messages))
    jinja = reference_jinja("mistral-common-v7")
    escaped = render_reference(jinja, case, False, "<s>", "</s>", arguments_as_json=False)
    plain = render_reference(jinja, case, False, "<s>", "</s>", arguments_as_json=True)
    assert '[TOOL_CALLS][{&#34;name&#34;: &#34;get_weather&#34;, &#34;arguments&#34;: {"city": "Paris"' in escaped
    assert escaped != plain and html.unescape(escaped) == plain
    assert plain == render_ours(template, case, False, "<s>", "</s>")


def test_every_reference_in_refdata_is_proven_or_says_why_not():
    """A reference template added to refdata is either some template's reference (and so proven above) or listed,
    with the reason, in template_parity.UNPROVEN_REFERENCES (docs/templates.md shows both)."""
    from tests.data.template_parity import UNPROVEN_REFERENCES
    from tests.refdata import refdata

    proven = {reference for template in list_templates() for reference in template.references}
    available = {path.stem for path in refdata("chat_templates").glob("*.jinja")}
    listed = {reference for reference, _, _ in UNPROVEN_REFERENCES}
    assert available - proven <= listed, "refdata templates neither proven nor listed as unproven"
    assert listed <= available
    for reference, name, _ in UNPROVEN_REFERENCES:  # a listed template does not claim that reference
        assert name is None or reference not in get_template(name).references


def test_templates_said_to_have_no_reference_have_none():
    """template_parity.NO_REFERENCE explains registered templates without a reference; one that gains a reference
    leaves the list (its table row then says what it is proven against)."""
    from tests.data.template_parity import NO_REFERENCE

    for name in NO_REFERENCE:
        assert not get_template(name).references, name
