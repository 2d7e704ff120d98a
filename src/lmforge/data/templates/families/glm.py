"""ChatGLM3 and GLM-4 (text and vision): role tokens, no end-of-turn token (the next role token ends a turn)."""

from lmforge.data.templates.registry import register_template

register_template(
    "chatglm3",
    format_prefix="[gMASK]sop",
    format_system="<|system|>\n {{content}}",
    format_user="<|user|>\n {{content}}",
    format_generation="<|assistant|>",
    format_assistant="\n {{content}}",
    format_observation="<|observation|>\n {{content}}",
    tool_format="glm4",
    efficient_eos=True,
    stop_words=("<|user|>", "<|observation|>"),
    reference="chatglm3",
    description="ChatGLM3-6B; training appends eos to each answer (the format has no end-of-turn token).",
)
GLM4 = dict(
    format_prefix="[gMASK]<sop>",
    format_system="<|system|>\n{{content}}",
    format_user="<|user|>\n{{content}}",
    format_generation="<|assistant|>",
    format_assistant="\n{{content}}",
    format_observation="<|observation|>\n{{content}}",
    tool_format="glm4",
    efficient_eos=True,
    stop_words=("<|user|>", "<|observation|>"),
)
register_template("glm4", **GLM4, description="GLM-4-9B-Chat / GLM-4-0414 (GLM-4 tool calls).")
register_template("glm4v", **GLM4, mm_plugin="glm4v", description="GLM-4V / GLM-4.1V (text turns).")
