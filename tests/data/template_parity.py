"""The parity check of one (template, conversation) against the template's reference jinja.

Shared by tests/data/test_templates_parity.py and scripts/template_docs.py (docs/templates.md), so the
documented table is exactly what the tests prove.
"""

from dataclasses import dataclass, replace

import jinja2

from lmforge.data.templates.encoding import _encode_piecewise, encode_conversation
from lmforge.data.templates.messages import assign_tool_call_ids, normalize_tools
from lmforge.data.templates.template import Message, Template
from lmforge.errors import TemplateError
from tests.data.template_cases import (
    ARGUMENTS_AS_JSON,
    CALL_IDS,
    CASES,
    CONTENT_AS_PARTS,
    REFERENCE_KWARGS,
    THINKING_FIELD,
    TODAY,
    reference_jinja,
    reference_tokens,
    render_ours,
    render_reference,
    tokenizer_for,
)

# (templates, case, reason); a template may be named NAME@REFERENCE for one of its references only;
# case "*system*" / "*default*" / "*tools*" / "*no tools*": every case with a system message / without one /
# with tools / without tools;
# a case ending in " (prompt)" applies only to its rendering with a generation prompt, " (full)" only to the one
# without.
_DROPS_TEXT = "the reference drops an answer's text beside its tool calls; lmforge keeps it"
_LLAMA31_CALLS = ("Llama 3.1's template refuses several calls in one answer and drops an answer's text beside a call; "
                  "lmforge keeps the text and writes the calls as one JSON list")
_OPEN_LAST_ANSWER = ("Apertus' template leaves a conversation's last answer open (its `<|assistant_end|>` comes "
                     "only with the next question); lmforge ends every answer with it, the end-of-turn the model "
                     "learns")
_OPENS_THINK = ("the template's generation prompt opens a think block (`<think>\\n`) when thinking is on; lmforge "
                "leaves the prompt at the assistant header, as for Qwen3: the model is trained to open the block "
                "itself")
_GLM47_PROMPT = ("GLM-4.7's generation prompt opens a think block (`<think>`; `</think>` with thinking off); lmforge "
                 "leaves the prompt at the assistant header, as for Qwen3: the model is trained to write it itself")
_KIMI_DROPS_FINAL = ("Kimi-K2-Thinking's template drops the thought of the last answer without tool calls (it keeps "
                     "only those of the tool-call answers after it); lmforge trains the final answer's thought")
DEVIATION_LIST: list[tuple[tuple[str, ...], str, str]] = [
    (("phi", "phi_medium"), "*system*", "Phi-3 mini/medium templates drop system messages silently; lmforge "
                                        "renders them in Phi-3.5's <|system|> turn instead of losing data"),
    (("mistral_v3",), "*system*", "Mistral v3's template writes the system prompt into the last user turn, and "
                                  "only when the conversation ends with a question (dropping it from training "
                                  "rows); lmforge puts it in the first user turn, as v1 does"),
    (("deepseekr1",), "thoughts", "DeepSeek-R1's template removes every thought, even the final answer's; "
                                  "lmforge trains the final answer's thought (enable_thinking: auto/true)"),
    (("deepseekr1",), "thought then none", "R1's template keeps the newlines after a removed thought"),
    (("mistral_small@mistral-common-v7", "mistral_small_vision@mistral-common-v7"), "*default*",
     "Mistral Small 3's own template (mistral-v7-tekken) writes its dated default system prompt; the generic v7 "
     "template has none"),
    (("mistral_small@mistral-common-v7", "mistral_small_vision@mistral-common-v7"), "*tools*",
     "Mistral Small 3.2 writes calls as `[TOOL_CALLS]NAME[CALL_ID]ID[ARGS]{...}` (its own template); the generic v7 "
     "template writes a JSON list"),
    (("qwen3_nothink", "minicpm_v_4_5", "qwen3_5_nothink"), "thoughts",
     "thinking off removes thoughts from trained answers; the reference's enable_thinking only changes the generation "
     "prompt"),
    (("nemotron_nano_v2",), "thoughts",
     "Nemotron's template opens a think block before the final answer and then writes the answer's own block after "
     "it (two `<think>`); lmforge trains the thought after that one `<think>\\n`, as the model generates it"),
    (("qwq", "deepseekr1", "phi4_reasoning", "nemotron_nano_v2", "gpt_oss", "gemma4", "gemma4n", "minimax2",
      "lfm2_5"),
     "thinking on",
     "enable_thinking: true trains an empty think block on answers without one; the reference writes them bare"),
    (("llama3_2", "mllama"), "tool calls with system and text", _LLAMA31_CALLS),
    (("llama3_2", "mllama"), "parallel tool calls", _LLAMA31_CALLS),
    (("mistral_v3", "mistral_small@mistral-v7-tekken", "mistral_small_vision@mistral-v7-tekken", "olmo3"),
     "tool calls with system and text", _DROPS_TEXT),
    (("deepseekr1",), "tool call",
     "DeepSeek-R1's template leaves an answer of one tool call open (it writes "
     "`<｜tool▁calls▁end｜><｜end▁of▁sentence｜>` "
     "only after a second call); lmforge closes every answer's calls, as V3's template does"),
    (("deepseekr1",), "tool calls with system and text",
     "DeepSeek-R1's template drops the calls of an answer that has text; lmforge keeps both, as V3's template does"),
    (("deepseekr1",), "tool calls in turn",
     "DeepSeek-R1's template writes the calls of an answer after a tool result as more calls of the first answer "
     "(inside the open tool results, without a header or `<｜tool▁calls▁begin｜>`); lmforge writes them as V3's "
     "template does"),
    (("gpt_oss",), "parallel tool calls",
     "gpt-oss's template writes only an answer's first call (it assumes one per message); lmforge writes "
     "each call as a message of its own"),
    (("command_r7b",), "tool calls with system and text",
     "Command R7B's template writes the text beside an answer's calls only from a `tool_plan` key (it drops the "
     "content); lmforge writes the text as that plan, between <|START_THINKING|> and <|END_THINKING|>"),
    (("hermes3",), "*no tools*", "Hermes 3's tool_use template fails without tools (the model's tokenizer picks its "
                                 "`default` template then: ChatML after bos, which lmforge renders)"),
    (("hermes3",), "tool calls with system and text", "Hermes 3's tool_use template drops an answer's text beside "
                                                      "its calls; lmforge keeps it"),
    (("gpt_oss",), "tool calls with system and text",
     "gpt-oss's template writes only an answer's first call (it assumes one per message) and names every result "
     "after it, and drops the text beside the calls once a final answer follows; lmforge writes each call as a "
     "message of its own, names each result after the call it answers and keeps the text as an analysis message"),
    *[(("granite4",), case, "Granite 4.0's template leaves its default system prompt out when tools are given; "
                            "lmforge writes it before the definitions") for case in
      ("tool call", "parallel tool calls", "tool calls in turn")],
    (("minicpm_v_4_5",), "thinking on (prompt)",
     "MiniCPM-V 4.5's template opens a think block in the generation prompt when thinking is on; lmforge leaves the "
     "prompt at the assistant header there, as Qwen3's template does (the model opens the block itself)"),
    (("apertus",), "*system* (full)", _OPEN_LAST_ANSWER),
    (("apertus",), "*default* (full)", _OPEN_LAST_ANSWER),
    (("qwen3_5", "qwen3_6"), "*default* (prompt)", _OPENS_THINK),
    (("qwen3_5", "qwen3_6"), "*system* (prompt)", _OPENS_THINK),
    (("qwen3_5_nothink",), "thinking on (prompt)", _OPENS_THINK),
    (("glm4_7",), "*default* (prompt)", _GLM47_PROMPT),
    (("glm4_7",), "*system* (prompt)", _GLM47_PROMPT),
    (("glm4_moe",), "thinking off", "GLM-4.5's template with thinking off appends `/nothink` to every question and "
                                    "closes an empty think block in the generation prompt: that is `glm4_moe_nothink`"),
    (("kimi_k2_thinking",), "thoughts (full)", _KIMI_DROPS_FINAL),
    (("kimi_k2_thinking",), "thought then none (full)", _KIMI_DROPS_FINAL),
    (("gemma4", "gemma4n"), "tool calls with system and text",
     "Gemma 4's template writes the text beside an answer's calls after their results (it renders content last); "
     "lmforge writes it before the calls"),
    (("hermes3",), "*tools* (prompt)", "Hermes 3's tool_use template is not prefix-preserving: a tool turn that ends "
                                       "the conversation loses the newline before `<|im_end|>` that it has when an "
                                       "answer follows (lmforge always writes it, as in the training rows)"),
]
DEVIATIONS: dict[str, dict[str, str]] = {}
for _names, _case, _reason in DEVIATION_LIST:
    for _name in _names:
        DEVIATIONS.setdefault(_name, {})[_case] = _reason


def deviation(template, case_name: str, case, reference: str | None = None,
              generation_prompt: bool | None = None) -> str | None:
    rules = {**DEVIATIONS.get(template.name, {}), **DEVIATIONS.get(f"{template.name}@{reference}", {})}
    has_system = any(m.role == "system" for m in case.messages)
    for key, reason in rules.items():
        if key.endswith(" (prompt)"):
            if not generation_prompt:
                continue
            key = key.removesuffix(" (prompt)")
        elif key.endswith(" (full)"):
            if generation_prompt:
                continue
            key = key.removesuffix(" (full)")
        if (key == case_name or (key == "*system*" and has_system) or (key == "*default*" and not has_system)
                or (key == "*tools*" and case.kind == "tools") or (key == "*no tools*" and case.kind != "tools")):
            return reason
    return None


def applicable(template, case_name: str, case, reference: str | None = None,
               generation_prompt: bool | None = None) -> str | None:
    """Why a case cannot be checked against this reference of the template (None: it can)."""
    if case.kind == "tools" and "tool_calls" not in reference_jinja(reference or template.reference):
        return "the reference has no tool calls"
    if case.kind == "tools" and not template.can_render_tools:
        return "the reference renders tool calls; lmforge registers this template without tool slots (not proven)"
    if case.kind == "thinking" and not template.thought_words:
        return "not a reasoning template"
    return deviation(template, case_name, case, reference or template.reference, generation_prompt)



# References that write no tool definitions (DeepSeek's): the model card (V3.1's) has the caller append them to
# the system prompt, which lmforge does. The reference is given that system prompt, so everything around the
# definitions (their place, the calls, the results) is proven; the definitions' text is the model card's.
TOOLS_IN_SYSTEM_PROMPT = {"deepseek-v3", "deepseek-v3.1", "deepseek-r1-distill-qwen"}


def _for_reference(template: Template, case, reference: str):
    """The case as the reference takes it: for TOOLS_IN_SYSTEM_PROMPT, the definitions in the system message."""
    if reference not in TOOLS_IN_SYSTEM_PROMPT or not case.tools:
        return case
    assert template.tools_position == "system" and template.format_tools == "{{content}}", template.name
    messages = case.messages
    system = template.default_system_for(True, TODAY)
    if messages and messages[0].role == "system":
        system, messages = messages[0].content, messages[1:]
    definitions = template.tools.render_tools(normalize_tools(case.tools))
    if system or template.tools_separator_always:
        definitions = f"{system}{template.tools_separator}{definitions}"
    return replace(case, messages=[Message("system", definitions), *messages])


@dataclass(frozen=True)
class Outcome:
    status: str  # "equal" (strings and ids), "refused" (by both), "skipped" (reason), "different" (detail)
    detail: str = ""


def check_case(template: Template, case_name: str, generation_prompt: bool, reference: str | None = None) -> Outcome:
    """Check one conversation against `reference` (default: the template's own reference)."""
    reference = reference or template.reference
    case = CASES[case_name]
    reason = applicable(template, case_name, case, reference, generation_prompt)
    if reason is not None:
        return Outcome("skipped", reason)
    if generation_prompt:
        case = case.prompt_case()
    # the reference gets the tool-call ids lmforge writes (tool datasets carry none)
    messages = (assign_tool_call_ids(case.messages) if reference in CALL_IDS and case.kind == "tools"
                else template.with_call_ids(case.messages))
    case = replace(case, thinking=case.thinking or template.default_thinking, messages=messages)
    bos, eos = reference_tokens(reference)
    try:
        expected = render_reference(reference_jinja(reference), _for_reference(template, case, reference),
                                    generation_prompt, bos, eos, reference in ARGUMENTS_AS_JSON,
                                    THINKING_FIELD.get(reference, ""), reference in CONTENT_AS_PARTS,
                                    REFERENCE_KWARGS.get(reference))
    except jinja2.exceptions.TemplateError as refused:
        try:
            render_ours(template, case, generation_prompt, bos, eos)
        except TemplateError:
            return Outcome("refused", f"the reference refuses this conversation ({refused}); so does lmforge")
        return Outcome("different", f"the reference refuses this conversation ({refused}); lmforge renders it")
    ours = render_ours(template, case, generation_prompt, bos, eos)
    if ours != expected:
        return Outcome("different", f"ours {ours!r} != reference {expected!r}")
    # Training ids (the whole rendering, split by offsets) and ids encoded segment by segment both equal
    # the ids of the reference rendering: no token merges across a prompt/answer boundary.
    tokenizer = tokenizer_for(template, bos, eos)
    full = tokenizer.encode(expected, add_special_tokens=False)
    encoded = encode_conversation(template, tokenizer, case.messages, tools=case.tools,
                                  add_generation_prompt=generation_prompt, enable_thinking=case.thinking, date=TODAY)
    segments = template.render(case.messages, tools=case.tools, add_generation_prompt=generation_prompt,
                               enable_thinking=case.thinking, bos_token=bos, eos_token=eos, date=TODAY)
    if encoded.flat() != full or _encode_piecewise(segments, tokenizer).flat() != full:
        return Outcome("different", "token ids differ")
    return Outcome("equal")


# Reference templates in refdata that no registered template is proven against: the template registered for that
# model family (None: none yet) and why it is not proven. tests/data/test_templates_parity.py checks that every
# refdata template is a registered template's reference or listed here; docs/templates.md shows the reasons.
UNPROVEN_REFERENCES: list[tuple[str, str | None, str]] = [  # (reference, template, reason)
    ("falcon-instruct", "falcon", "a community template that, in transformers' jinja environment, renders stray blank "
                                  "lines and indentation (it was written for an environment without `trim_blocks`); "
                                  "`falcon` follows the published `User:` / `Falcon:` form instead"),
    ("hunyuan-a13b", "hunyuan", "writes `<|startoftext|>` before every question except the first after a system "
                                "prompt, and an empty think block after the whole conversation when thinking is off; "
                                "slots cannot express either (vLLM-authored, not verified as the hub template)"),
    ("hunyuan-hy3", "hy3", "`hy3` is LLaMA-Factory's form (no `:opensource` tokens, no reasoning-effort marker); "
                           "`hy3_nothink` is proven against Hy3's own template"),
    ("qwen3.8", None, "Ollama's test fixture for Qwen3.8's reasoning-effort semantics; not registered yet"),
    ("deepseek-v3.2", None, "a community Jinja port of DeepSeek-V3.2's Python encoder (no official template): its "
                            "generation prompt opens `<think></think>` where answers in the history follow "
                            "`</think>`; its DSML tool markup is not registered yet"),
    ("llava-onevision", None, "its generation prompt (`<|im_start|>assistant\\n`) is not the header it writes before "
                              "the answers it shows (`<|im_start|>assistant \\n`): the model would be trained after "
                              "one header and asked after another; not registered"),
]

# Templates of families whose own jinja is not in refdata, and why (docs/templates.md
# shows it): what each is registered from instead
NO_REFERENCE: dict[str, str] = {
    "seed_oss": "refdata has no Seed-OSS template (and third-party text is not copied into this repository); "
                "registered from its published template (ByteDance-Seed/Seed-OSS-36B-Instruct), tools and thinking "
                "included",
    "exaone4": "EXAONE 4's template ships under the EXAONE AI Model License (non-commercial), which keeps it out of "
               "this repository, and refdata has none; registered from the format Ollama's EXAONE 4 renderer writes "
               "(role lines, an empty think block opening every answer, `<tool_call>` JSON calls)",
    **dict.fromkeys(("smollm3", "smollm3_nothink"), (
        "no verbatim copy of SmolLM3's template was found (refdata has none; public copies are edited: Unsloth's "
        "rewrite, a benchmark handler's re-indented docstring of a pre-release revision); registered from the format "
        "those copies agree on; its template renders no tool calls of an answer (they were trained as text), so "
        "lmforge writes them as Qwen's `<tool_call>` JSON blocks, the format its tools section asks for")),
}
