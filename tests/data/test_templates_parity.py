"""Every template with a reference renders exactly what the model's own chat_template renders.

For each (template, conversation) pair: equal strings with and without a generation prompt, and
equal token ids when the rendering is encoded piece by piece (as training does) or all at once.
Where the reference refuses a conversation (`raise_exception`), ours must refuse it too.
Cases a reference cannot express are skipped with the reason; DEVIATIONS lists the few places where
lmforge deliberately differs, each with its reason (docs/templates.md shows them).
"""

from dataclasses import replace

import jinja2
import pytest

from lmforge.data.templates import list_templates
from lmforge.data.templates.encoding import encode_conversation
from lmforge.errors import TemplateError
from tests.data.template_cases import (
    CASES,
    reference_jinja,
    reference_tokens,
    render_ours,
    render_reference,
    tokenizer_for,
)

REFERENCED = [t for t in list_templates() if t.reference]
# (templates, case, reason); case "*system*" / "*default*" / "*tools*": every case with a system message /
# without one / with tools.
_LLAMA_TOOLS = ("Llama 3.1+ put tool definitions in the first user turn and refuse several calls per answer; "
                "lmforge's llama3 tool format writes them in the system turn (not proven)")
_MISTRAL_TOOLS = "Mistral's templates need 9-character tool-call ids, which tool datasets do not carry (not proven)"
DEVIATION_LIST: list[tuple[tuple[str, ...], str, str]] = [
    (("phi", "phi_medium"), "*system*", "Phi-3 mini/medium templates drop system messages silently; lmforge "
                                        "renders them in Phi-3.5's <|system|> turn instead of losing data"),
    (("mistral_v3",), "*system*", "Mistral v3's template writes the system prompt into the last user turn, and "
                                  "only when the conversation ends with a question (dropping it from training "
                                  "rows); lmforge puts it in the first user turn, as v1 does"),
    (("deepseekr1",), "thoughts", "DeepSeek-R1's template removes every thought, even the final answer's; "
                                  "lmforge trains the final answer's thought (enable_thinking: auto/true)"),
    (("deepseekr1",), "thought then none", "R1's template keeps the newlines after a removed thought"),
    (("granite3", "mistral_small"), "*default*", "the reference's default system prompt carries today's date; "
                                                 "lmforge has no default system prompt here"),
    (("qwen3_nothink",), "thoughts", "thinking off removes thoughts from trained answers; the reference's "
                                     "enable_thinking only changes the generation prompt"),
    (("llama3_2", "mllama", "llama4"), "*tools*", _LLAMA_TOOLS),
    (("mistral_v3", "mistral_tekken", "mistral_small"), "*tools*", _MISTRAL_TOOLS),
]
DEVIATIONS: dict[str, dict[str, str]] = {}
for _names, _case, _reason in DEVIATION_LIST:
    for _name in _names:
        DEVIATIONS.setdefault(_name, {})[_case] = _reason


def _deviation(template, case_name: str, case) -> str | None:
    rules = DEVIATIONS.get(template.name, {})
    has_system = any(m.role == "system" for m in case.messages)
    for key, reason in rules.items():
        if (key == case_name or (key == "*system*" and has_system) or (key == "*default*" and not has_system)
                or (key == "*tools*" and case.kind == "tools")):
            return reason
    return None


def _applicable(template, case_name: str, case) -> str | None:
    """Why a case cannot be checked against this template's reference (None: it can)."""
    if case.kind == "tools" and not (template.can_render_tools and "tool_calls" in reference_jinja(template.reference)):
        return "the reference has no tool calls or lmforge's template no tool slots"
    if case.kind == "thinking" and not template.thought_words:
        return "not a reasoning template"
    return _deviation(template, case_name, case)


@pytest.mark.parametrize("template", REFERENCED, ids=lambda t: t.name)
@pytest.mark.parametrize("case_name", list(CASES))
@pytest.mark.parametrize("generation_prompt", [False, True], ids=["full", "prompt"])
def test_render_equals_reference(template, case_name, generation_prompt):
    case = CASES[case_name]
    reason = _applicable(template, case_name, case)
    if reason is not None:
        pytest.skip(reason)
    if generation_prompt:
        case = case.prompt_case()
    case = replace(case, thinking=case.thinking or template.default_thinking)
    bos, eos = reference_tokens(template)
    jinja = reference_jinja(template.reference)
    try:
        expected = render_reference(jinja, case, generation_prompt, bos, eos)
    except jinja2.exceptions.TemplateError as refused:
        with pytest.raises(TemplateError):
            render_ours(template, case, generation_prompt, bos, eos)
        pytest.skip(f"the reference refuses this conversation ({refused}); so does lmforge")
    assert render_ours(template, case, generation_prompt, bos, eos) == expected
    # Encoding piece by piece (as training does) gives the ids of tokenizing the whole rendering.
    tokenizer = tokenizer_for(template, bos, eos)
    encoded = encode_conversation(template, tokenizer, case.messages, tools=case.tools,
                                  add_generation_prompt=generation_prompt, enable_thinking=case.thinking)
    assert encoded.flat() == tokenizer.encode(expected, add_special_tokens=False)
