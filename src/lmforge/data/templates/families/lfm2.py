"""Liquid AI LFM2 / LFM2-VL / LFM2.5: ChatML after bos (`<|startoftext|>`), pythonic tool calls, the definitions
after the system prompt, each tool result a `tool` turn."""

from lmforge.data.templates.families.chatml import CHATML
from lmforge.data.templates.registry import register_template

LFM2 = dict(**CHATML, format_prefix="{{bos_token}}", tools_separator="\n", format_observation="{{content}}")
register_template("lfm2", **LFM2, tool_format="lfm2",
                  format_observation_item="<|im_start|>tool\n<|tool_response_start|>{{content}}<|tool_response_end|>"
                                          "<|im_end|>\n",
                  reference="lfm2", description="LFM2 (350M..8B): ChatML after bos, no default system.")
register_template("lfm2_vl", **LFM2, tool_format="lfm2",
                  format_observation_item="<|im_start|>tool\n<|tool_response_start|>{{content}}<|tool_response_end|>"
                                          "<|im_end|>\n",
                  mm_plugin="lfm2_vl", default_system="You are a helpful multimodal assistant by Liquid AI.",
                  description="LFM2-VL (its default system prompt, as LLaMA-Factory registers it).")
register_template("lfm2_5", **LFM2, tool_format="lfm2.5",
                  format_observation_item="<|im_start|>tool\n{{content}}<|im_end|>\n",
                  thought_words=("<think>", "</think>"), format_thought="<think>{{content}}</think>",
                  thoughts_in_history=False, reference="lfm2.5", aliases=("lfm2.5",),
                  description="LFM2.5: LFM2's turns, thoughts of the answers after the last question kept.")
