"""Reasoning ChatML families: Qwen3 (hybrid thinking) and QwQ (always thinks)."""

from lmforge.data.templates.families.chatml import CHATML, QWEN_TOOLS
from lmforge.data.templates.registry import register_template

THINKING = dict(thought_words=("<think>", "</think>"), thoughts_in_history=False)

register_template("qwen3", **CHATML, **QWEN_TOOLS, **THINKING, empty_thought_on_final=True, reference="qwen3",
                  description="Qwen3 hybrid thinking; `enable_thinking` picks the policy (true, false, auto).")
register_template("qwen3_nothink", **CHATML, **QWEN_TOOLS, **THINKING, empty_thought_on_final=True,
                  default_thinking="false", reference="qwen3",
                  description="Qwen3 with thinking off by default (as `qwen3` with `enable_thinking: false`).")
register_template("qwq", **CHATML, **QWEN_TOOLS, **THINKING, thought_prefill="<think>\n", tools_separator_always=True,
                  reference="qwq-32b",
                  description="QwQ-32B: the generation prompt opens a think block.")
