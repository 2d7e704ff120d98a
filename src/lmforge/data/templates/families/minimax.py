"""MiniMax-M1 (`<beginning_of_sentence>ROLE name=...` turns) and MiniMax-M2 / M2.1 (`]~b]ROLE ... [e~[` turns,
reasoning in `<think>` blocks)."""

from lmforge.data.templates.registry import register_template

register_template(
    "minimax1",
    format_prefix="<begin_of_document>",
    format_system="<beginning_of_sentence>system ai_setting=assistant\n{{content}}<end_of_sentence>\n",
    format_user="<beginning_of_sentence>user name=user\n{{content}}<end_of_sentence>\n",
    format_generation="<beginning_of_sentence>ai name=assistant\n",
    format_assistant="{{content}}<end_of_sentence>",
    assistant_suffix="\n",
    default_system="You are a helpful assistant created by Minimax based on MiniMax-M1 model.",
    stop_words=("<end_of_sentence>",),
    reference="minimax-m1",
    aliases=("minimax_m1",),
    description="MiniMax-M1 (40k / 80k).",
)
register_template(
    "minimax2",
    format_prefix="]~!b[",
    format_system="]~b]system\n{{content}}[e~[\n",
    format_user="]~b]user\n{{content}}[e~[\n",
    format_generation="]~b]ai\n",
    format_assistant="{{content}}[e~[",
    assistant_suffix="\n",
    system_always=True,
    default_system="You are a helpful assistant.",
    tool_format="minimax2",
    format_observation="]~b]tool{{content}}[e~[\n",
    format_observation_item="\n<response>{{content}}</response>",
    thought_words=("<think>", "</think>"),
    format_thought="<think>\n{{content}}\n</think>\n\n",
    thoughts_in_history=False,
    thought_prefill="<think>\n",
    stop_words=("[e~[",),
    reference="minimax-m2",
    aliases=("minimax_m2",),
    description="MiniMax-M2 / M2.1: the generation prompt opens a think block.",
)
