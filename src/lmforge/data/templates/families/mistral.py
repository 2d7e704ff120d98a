"""Mistral: the original [INST] format, v1 (spaced), v3 (tools) and v7 Tekken (system prompt block)."""

from lmforge.data.templates.registry import register_template

register_template(
    "mistral",
    format_prefix="{{bos_token}}",
    format_user="[INST] {{content}} [/INST]",
    format_assistant="{{content}}{{eos_token}}",
    stop_words=("</s>",),
    reference="mistral-instruct-v0.2-legacy",
    description="Mistral-7B-Instruct v0.1 / v0.2 (no system role).",
)
register_template(
    "mistral_v1",
    format_prefix="{{bos_token}}",
    format_user=" [INST] {{content}} [/INST]",
    format_assistant=" {{content}}{{eos_token}}",
    format_system="{{content}}\n\n",
    system_in_user=True,
    stop_words=("</s>",),
    reference="mistral-v1",
    description="Mistral 'v1' tokenizer template (Mixtral-8x7B-Instruct): system in the first [INST].",
)
register_template(
    "mistral_v3",
    format_prefix="{{bos_token}}",
    format_user="[INST] {{content}}[/INST]",
    format_assistant=" {{content}}{{eos_token}}",
    format_function="{{content}}{{eos_token}}",
    format_observation="{{content}}",
    format_observation_item='[TOOL_RESULTS] {"content": {{content}}}[/TOOL_RESULTS]',
    format_system="{{content}}\n\n",
    system_in_user=True,
    tool_format="mistral",
    strip_content=True,
    stop_words=("</s>",),
    reference="mistral-v3",
    description="Mistral-7B-Instruct v0.3, Mixtral-8x22B, Mistral-Large-2407 (SentencePiece v3, tools).",
)
TEKKEN = dict(
    format_prefix="{{bos_token}}",
    format_system="[SYSTEM_PROMPT]{{content}}[/SYSTEM_PROMPT]",
    format_user="[INST]{{content}}[/INST]",
    format_assistant="{{content}}{{eos_token}}",
    format_function="{{content}}{{eos_token}}",
    format_observation="{{content}}",
    format_observation_item="[TOOL_RESULTS]{{content}}[/TOOL_RESULTS]",
    tool_format="mistral",
    stop_words=("</s>",),
)
register_template("mistral_tekken", **TEKKEN, reference="mistral-common-v7", aliases=("mistral_v7",),
                  description="Mistral v7 Tekken (Mistral-Large-2411, Ministral): [SYSTEM_PROMPT] block.")
register_template("mistral_small", **TEKKEN, reference="mistral-v7-tekken", family_references=("mistral-common-v7",),
                  description="Mistral-Small-3.x-Instruct (Tekken v7; its default system prompt is dated, so "
                              "lmforge has none: pass your own).")
register_template("pixtral", **TEKKEN, mm_plugin="pixtral", family_references=("mistral-common-v7",),
                  description="Pixtral-12B (Tekken, [IMG] tokens).")
