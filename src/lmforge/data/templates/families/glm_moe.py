"""GLM-4.5 / 4.6 / 4.7 (glm4_moe), GLM-4.5V, GLM-Z1, GLM-OCR and Aeva: GLM-4's role tokens with think blocks.

The turns have no end-of-turn token (the next role token ends one), so training appends eos to each answer.
GLM-4.5's own template writes an empty `<think></think>` before every answer without a kept thought (`empty_thought`,
GLM-4.7 `</think>`); with thinking off that is every answer, which `glm4_moe_nothink` writes after its header. Both
forms are proven against the family's templates, tools included.
"""

from lmforge.data.templates.families.glm import GLM4
from lmforge.data.templates.registry import register_template

GLM_THINKING = dict(thought_words=("<think>", "</think>"), format_thought="\n<think>{{content}}</think>",
                    thoughts_in_history=False)
GLM45_THINKING = {**GLM_THINKING, "empty_thought": "\n<think></think>"}
# GLM-4.5's tool protocol: the definitions as a system turn of their own before the system prompt, calls as
# `<tool_call>NAME` with `<arg_key>` / `<arg_value>` lines, a run of results as one observation turn
GLM45 = dict(**{**GLM4, "format_observation": "<|observation|>{{content}}", "tool_format": "glm4_moe"},
             format_observation_item="\n<tool_response>\n{{content}}\n</tool_response>",
             format_tools="<|system|>\n{{content}}", tools_position="before_system")

register_template("glm4_moe", **GLM45, **GLM45_THINKING, reference="glm-4.5", aliases=("glm4_5", "glm4_6"),
                  description="GLM-4.5 / 4.5-Air / 4.6 (hybrid thinking).")
register_template("glm4_5v", **GLM45, **GLM45_THINKING, mm_plugin="glm4v",
                  description="GLM-4.5V (text turns; images from the plugin).")
# with thinking off, as GLM-4.5's template writes it then: `/nothink` after every question, an empty think block
# opening every answer (unsupervised, with the header)
register_template(
    "glm4_moe_nothink",
    **{**GLM45, "format_user": "<|user|>\n{{content}}/nothink", "format_generation": "<|assistant|>\n<think></think>"},
    strip_content=True,
    default_thinking="false",  # what the rendering is: GLM-4.5's template with enable_thinking false
    reference="glm-4.5",
    aliases=("glm4_5_nothink",),
    description="GLM-4.5 / 4.5-Air / 4.6 with thinking off (`/nothink`), glm4_moe tool calls.",
)
# GLM-4.7: no newline after the role tokens, tool calls without newlines; with thinking off every answer opens
# with `</think>` (the history's answers too)
GLM47 = {**GLM45, "format_system": "<|system|>{{content}}", "format_user": "<|user|>{{content}}",
         "format_assistant": "{{content}}", "tool_format": "glm4_7",
         "format_observation_item": "<tool_response>{{content}}</tool_response>"}
register_template("glm4_7_nothink", **{**GLM47, "format_generation": "<|assistant|></think>"}, strip_content=True,
                  default_thinking="false", reference="glm-4.7-flash",
                  description="GLM-4.7 / 4.7-Flash with thinking off.")
register_template("glm4_7", **GLM47,
                  thought_words=("<think>", "</think>"), format_thought="<think>{{content}}</think>",
                  thoughts_in_history=False, empty_thought="</think>", reference="glm-4.7-flash",
                  description="GLM-4.7 / 4.7-Flash: no newline after the role tokens.")
register_template("glmz1", **GLM4, **GLM_THINKING, description="GLM-Z1-0414 (reasoning).")
register_template("glm_ocr", **GLM4, mm_plugin="glm4v", description="GLM-OCR.")
register_template("aeva", **GLM45, **GLM45_THINKING,
                  default_system="You are an AI assistant named Aeva created by Zongzhi Lou. Your answer should be "
                                 "friendly, unbiased, faithful, informative and detailed.",
                  description="Aeva (GLM-4.5 turns and tool calls, its default system prompt).")
