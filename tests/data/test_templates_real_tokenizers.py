"""Token ids with the families' real tokenizers: training ids equal the ids of the model's own rendering,
and the supervised tokens are exactly the answers (no token straddles a prompt/answer boundary)."""

from dataclasses import replace

import jinja2
import pytest

from lmforge.data.templates import get_template
from lmforge.data.templates.encoding import encode_conversation
from tests.data.real_tokenizers import real_tokenizer
from tests.data.template_cases import CASES, reference_jinja, relevant_cases, render_reference
from tests.data.template_parity import applicable

PAIRS = [("llama2", "llama2"), ("mistral", "mistral_v1"), ("mistral_v1", "mistral_v1"), ("mistral_v3", "mistral_v3"),
         ("llama3", "llama3"), ("llama3_2", "llama3"), ("qwen", "qwen"), ("qwen2", "qwen"), ("qwen3", "qwen"),
         ("qwq", "qwen"), ("qwen2_vl", "qwen")]


CHECKS = [(name, tokenizer, case) for name, tokenizer in PAIRS for case in relevant_cases(get_template(name))]


@pytest.mark.parametrize("name, tokenizer_name, case_name", CHECKS, ids=[f"{t}-{n}-{c}" for t, n, c in CHECKS])
def test_real_tokenizer_ids_and_mask(name, tokenizer_name, case_name, tmp_path_factory):
    template = get_template(name)
    case = CASES[case_name]
    reason = applicable(template, case_name, case)
    if reason is not None:
        pytest.skip(reason)
    tokenizer = real_tokenizer(tokenizer_name, tmp_path_factory.getbasetemp() / "real-tokenizers")
    bos, eos = tokenizer.bos_token or "", tokenizer.eos_token or ""
    case = replace(case, messages=template.with_call_ids(case.messages))
    try:
        expected = render_reference(reference_jinja(template.reference), case, False, bos, eos)
    except jinja2.exceptions.TemplateError as refused:
        pytest.skip(f"the reference refuses this conversation ({refused})")
    encoded = encode_conversation(template, tokenizer, case.messages, tools=case.tools, enable_thinking=case.thinking)
    assert encoded.flat() == tokenizer.encode(expected, add_special_tokens=False)
    segments = template.render(case.messages, tools=case.tools, enable_thinking=case.thinking, bos_token=bos,
                               eos_token=eos)
    answers = [segment.text for segment in segments if segment.supervised]
    assert [tokenizer.decode(response).strip() for _, response in encoded.turns] == [a.strip() for a in answers]
