"""gpt-oss: OpenAI's Harmony format (`<|start|>ROLE<|channel|>...<|message|>...<|end|>`).

Every conversation opens with Harmony's system message (model identity, knowledge cutoff, today's date,
reasoning effort, the valid channels). The user's system prompt and the tool definitions (the `gpt_oss`
tool format, harmony.py) form the developer message. Answers are final-channel messages: the last one
ends in `<|return|>` (trained: the model stops there), earlier ones are written back with `<|end|>` as
Harmony does (that token is not trained). Thoughts (`<think>...</think>` in the data) are analysis-channel
messages before the answer, kept after the last question only, as gpt-oss's template keeps them.
"""

from lmforge.data.templates.registry import register_template

HARMONY_SYSTEM = (
    "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
    "Knowledge cutoff: 2024-06\nCurrent date: {{date}}\n\nReasoning: medium\n\n"
    "# Valid channels: analysis, commentary, final. Channel must be included for every message."
)

register_template(
    "gpt_oss",
    format_prefix=HARMONY_SYSTEM + "<|end|>",
    format_prefix_tools=HARMONY_SYSTEM + "\nCalls to these tools must go to the commentary channel: 'functions'."
    "<|end|>",
    date_format="%Y-%m-%d",
    format_system="<|start|>developer<|message|>{{content}}{{tools}}<|end|>",
    format_system_text="# Instructions\n\n{{content}}\n\n",
    format_tools="# Tools\n\n{{content}}",
    tools_position="in_system",
    format_user="<|start|>user<|message|>{{content}}<|end|>",
    format_generation="<|start|>assistant",
    format_assistant="<|channel|>final<|message|>{{content}}<|return|>",
    format_function="{{content}}",  # the calls, each ending in <|call|>
    end_in_history=("<|return|>", "<|end|>"),
    format_observation="{{content}}",
    format_observation_item="<|start|>functions.{{call_name}} to=assistant<|channel|>commentary<|message|>"
                            "{{content_json}}<|end|>",
    tool_format="gpt_oss",
    thought_words=("<think>", "</think>"),
    format_thought="<|channel|>analysis<|message|>{{content}}<|end|><|start|>assistant",
    thoughts_in_history=False,
    stop_words=("<|return|>", "<|call|>"),
    reference="gpt-oss",
    description="gpt-oss (Harmony: Harmony's system message, your system prompt as developer instructions, "
                "analysis-channel thoughts, final-channel answers).",
)
