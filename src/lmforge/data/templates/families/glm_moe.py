"""GLM-4.5 / 4.6 / 4.7 (glm4_moe), GLM-4.5V, GLM-Z1, GLM-OCR and Aeva: GLM-4's role tokens with think blocks.

The turns have no end-of-turn token (the next role token ends one), so training appends eos to each answer.
GLM-4.5's own template writes an empty `<think></think>` before every answer without a kept thought; these
registrations write thoughts as the other reasoning templates do (the final answer's), so they are not proven
against glm-4.5.jinja (docs/templates.md). Tool calls: GLM-4's format until the glm4_moe XML format lands.
"""

from lmforge.data.templates.families.glm import GLM4
from lmforge.data.templates.registry import register_template

GLM_THINKING = dict(thought_words=("<think>", "</think>"), format_thought="\n<think>{{content}}</think>",
                    thoughts_in_history=False)

register_template("glm4_moe", **GLM4, **GLM_THINKING, aliases=("glm4_5", "glm4_6"),
                  description="GLM-4.5 / 4.5-Air / 4.6 (hybrid thinking).")
register_template("glm4_5v", **GLM4, **GLM_THINKING, mm_plugin="glm4v",
                  description="GLM-4.5V (text turns; images from the plugin).")
register_template("glm4_7", **{**GLM4, "format_assistant": "{{content}}"},
                  thought_words=("<think>", "</think>"), format_thought="<think>{{content}}</think>",
                  thoughts_in_history=False,
                  description="GLM-4.7 / 4.7-Flash: no newline after the role tokens.")
register_template("glmz1", **GLM4, **GLM_THINKING, description="GLM-Z1-0414 (reasoning).")
register_template("glm_ocr", **GLM4, mm_plugin="glm4v", description="GLM-OCR.")
register_template("aeva", **{**GLM4, "format_assistant": "{{content}}"},
                  thought_words=("<think>", "</think>"), format_thought="<think>{{content}}</think>",
                  thoughts_in_history=False,
                  default_system="You are an AI assistant named Aeva created by Zongzhi Lou. Your answer should be "
                                 "friendly, unbiased, faithful, informative and detailed.",
                  description="Aeva (GLM-4.7 turns, its default system prompt).")
