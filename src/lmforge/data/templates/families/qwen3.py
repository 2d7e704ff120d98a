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
register_template("qwen3_instruct", **CHATML, **QWEN_TOOLS, reference="qwen3-instruct-2507",
                  aliases=("qwen3_2507",),
                  description="Qwen3-*-Instruct-2507 (non-thinking refresh): ChatML, Qwen's tool calls, no default "
                              "system.")
# Qwen3.5 / 3.6: Qwen3's turns and thinking rule, Qwen3-Coder's XML calls with JSON definitions. Their own templates
# also write a think block in every answer after the last question (tool-call answers included) and the tool
# definitions before the system prompt, which these slots do not: their tool cases are not proven.
# Qwen3.5 writes the tool definitions before the system prompt, and a think block (empty without a thought) in every
# answer after the last question, tool-call answers included
QWEN35 = dict(**CHATML, **{**QWEN_TOOLS, "tool_format": "qwen3_5"}, **THINKING, empty_thought_on_final=True,
              empty_thought_after_query=True, tools_first=True, mm_plugin="qwen3_vl")
register_template("qwen3_5", **QWEN35, reference="qwen3.5",
                  description="Qwen3.5 (4B and larger; thinking on by default).")
register_template("qwen3_5_nothink", **QWEN35, default_thinking="false", reference="qwen3.5-small",
                  description="Qwen3.5 with thinking off by default (2B and smaller ship it so).")
register_template("qwen3_6", **QWEN35, reference="qwen3.6", description="Qwen3.6 (27B, 35B-A3B).")
register_template("qwen3_coder", **CHATML, tool_format="qwen3_coder",
                  format_observation="<|im_start|>user\n{{content}}<|im_end|>\n",
                  format_observation_item="<tool_response>\n{{content}}\n</tool_response>\n", reference="qwen3-coder",
                  default_system_tools="You are Qwen, a helpful AI assistant that can interact with a computer to "
                                       "solve tasks.",
                  description="Qwen3-Coder Instruct: ChatML, XML tool calls (`<function=NAME>`, `<parameter=...>`).")
