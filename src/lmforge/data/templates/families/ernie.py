"""Baidu ERNIE 4.5: the text models' `User:` / `Assistant:` turns after <|begin_of_sentence|>, the thinking
models' ChatML-like turns (blank lines between turns), and ERNIE-4.5-VL."""

from lmforge.data.templates.registry import register_template

register_template(
    "ernie_nothink",
    format_prefix="<|begin_of_sentence|>",
    format_system="{{content}}\n",
    format_user="User: {{content}}\n",
    format_generation="Assistant:",
    # the answer owns the space after `Assistant:` (one token with its first word); a generation prompt ends
    # with it, as ERNIE's own template writes it
    format_assistant=" {{content}}<|end_of_sentence|>",
    thought_prefill=" ",
    stop_words=("<|end_of_sentence|>",),
    reference="ernie-4.5",
    aliases=("ernie4_5",),
    description="ERNIE-4.5 text models (0.3B, 21B-A3B, 300B-A47B; -PT and Base-PT): `User:` / `Assistant:` turns.",
)
register_template(
    "ernie",
    format_system="<|im_start|>system\n{{content}}<|im_end|>\n\n",
    format_user="<|im_start|>user\n{{content}}<|im_end|>\n\n",
    format_generation="<|im_start|>assistant\n",
    format_assistant="{{content}}<|im_end|>",
    assistant_suffix="\n\n",
    format_observation="<|im_start|>tool\n{{content}}<|im_end|>\n\n",
    default_system="<global_setting>\nthink_mode=True\n</global_setting>",
    stop_words=("<|im_end|>",),
    description="ERNIE-4.5-21B-A3B-Thinking: ChatML-like turns with a blank line after each, thinking switched on "
                "by its default system setting.",
)
register_template(
    "ernie_vl",
    format_system="{{content}}\n",
    format_user="User: {{content}}",
    format_generation="\nAssistant:",
    format_assistant=" {{content}}<|end_of_sentence|>",
    thought_prefill=" ",  # as ernie_nothink: the answer owns the space after `Assistant:`
    thought_words=("<think>", "</think>"),
    thoughts_in_history=False,
    stop_words=("<|end_of_sentence|>",),
    replace_eos=True,
    mm_plugin="ernie4_5_vl_moe",
    description="ERNIE-4.5-VL (thinking and non-thinking).",
)
