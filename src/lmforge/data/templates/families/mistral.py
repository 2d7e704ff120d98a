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
    format_observation_item='[TOOL_RESULTS] {"content": {{content}}, "call_id": "{{call_id}}"}[/TOOL_RESULTS]',
    format_system="{{content}}\n\n",
    system_in_user=True,
    tool_format="mistral",
    tools_position="before_last_user",
    strip_content=True,
    stop_words=("</s>",),
    reference="mistral-v3",
    description="Mistral-7B-Instruct v0.3, Mixtral-8x22B, Mistral-Large-2407 (SentencePiece v3, tools).",
)
# Mistral Small 3.x's own default system prompt; `{{date}}` is today, as its template's strftime_now
MISTRAL_SMALL_SYSTEM = (
    "You are Mistral Small 3, a Large Language Model (LLM) created by Mistral AI, a French startup "
    "headquartered in Paris.\nYour knowledge base was last updated on 2023-10-01. The current date is "
    "{{date}}.\n\nWhen you're not sure about some information or when the user's request requires "
    "up-to-date or specific data, you must use the available tools to fetch the information. Do not "
    "hesitate to use tools whenever they can provide a more accurate or complete response. If no "
    "relevant tools are available, then clearly state that you don't have the information and avoid "
    "making up anything.\n\nIf the user's question is not clear, ambiguous, or does not provide enough "
    "context for you to accurately answer the question, you do not try to answer it right away and you "
    "rather ask the user to clarify their request (e.g. \"What are some good restaurants around me?\" => "
    "\"Where are you?\" or \"When is the next flight to Tokyo\" => \"Where do you travel from?\").\nYou are "
    "always very attentive to dates, and when asked about information at specific dates, you discard "
    "information that is at another date.\nYou follow these instructions in all languages, and always "
    "respond to the user in the language they use or request.\nNext sections describe the capabilities "
    "that you have.\n\n# WEB BROWSING INSTRUCTIONS\n\nYou cannot perform any web search or access "
    "internet to open URLs, links etc. If it seems like the user is expecting you to do so, you "
    "clarify the situation and ask the user to copy paste the text directly in the chat.\n\n# "
    "MULTI-MODAL INSTRUCTIONS\n\nYou have the ability to read images, but you cannot generate images. "
    "You also cannot transcribe audio files or videos.\nYou cannot read nor transcribe audio files or "
    "videos.\n\n# TOOL CALLING INSTRUCTIONS\n\nYou may have access to tools that you can use to fetch "
    "information or perform actions. You must use these tools in the following situations:\n\n1. When "
    "the request requires up-to-date information.\n2. When the request requires specific data that you "
    "do not have in your knowledge base.\n3. When the request involves actions that you cannot perform "
    "without tools.\n\nAlways prioritize using tools to provide the most accurate and helpful "
    "response. If tools are not available, inform the user that you cannot perform the requested "
    "action at the moment."
)
TEKKEN = dict(
    format_prefix="{{bos_token}}",
    format_system="[SYSTEM_PROMPT]{{content}}[/SYSTEM_PROMPT]",
    format_user="[INST]{{content}}[/INST]",
    format_assistant="{{content}}{{eos_token}}",
    format_function="{{content}}{{eos_token}}",
    format_observation="{{content}}",
    format_observation_item="[TOOL_RESULTS]{{call_id}}[TOOL_CONTENT]{{content}}[/TOOL_RESULTS]",
    tool_format="mistral_v7",
    tools_position="before_last_user",
    stop_words=("</s>",),
)
register_template("mistral_tekken", **TEKKEN, reference="mistral-common-v7", aliases=("mistral_v7",),
                  description="Mistral v7 Tekken (Mistral-Large-2411, Ministral): [SYSTEM_PROMPT] block.")
MISTRAL_SMALL = dict(**{**TEKKEN, "tool_format": "mistral_small"}, default_system=MISTRAL_SMALL_SYSTEM,
                     date_format="%Y-%m-%d", reference="mistral-v7-tekken", family_references=("mistral-common-v7",))
register_template("mistral_small", **MISTRAL_SMALL,
                  description="Mistral-Small-24B-Instruct-2501, Devstral (Tekken; its dated default system prompt, "
                              "`[TOOL_CALLS]NAME[CALL_ID]ID[ARGS]{...}` calls).")
# Mistral-Small 3.1 / 3.2 are Mistral3ForConditionalGeneration checkpoints (Pixtral's vision tower and processor):
# the same turns, with the processor's [IMG] placeholders; the reference is 3.2's own template (image blocks included)
register_template("mistral_small_vision", **MISTRAL_SMALL, mm_plugin="pixtral",
                  description="Mistral-Small-3.1 / 3.2-24B (vision): `mistral_small` with Pixtral's [IMG] tokens.")
register_template("pixtral", **TEKKEN, mm_plugin="pixtral", family_references=("mistral-common-v7",),
                  description="Pixtral-12B (Tekken, [IMG] tokens).")
# Ministral 8B (2410) and Ministral 3 in LLaMA-Factory's form: [INST] turns without spaces, the system prompt in
# the first question
MINISTRAL = dict(format_prefix="{{bos_token}}", format_user="[INST]{{content}}[/INST]",
                 format_assistant="{{content}}{{eos_token}}", format_system="{{content}}\n\n", system_in_user=True,
                 stop_words=("</s>",))
register_template("ministral", **MINISTRAL, description="Ministral-8B-Instruct-2410.")
register_template("ministral3", **MINISTRAL, mm_plugin="pixtral",
                  description="Ministral 3 (3B / 8B / 14B) Instruct in LLaMA-Factory's form.")
# Ministral 3 Reasoning: Tekken turns, the reasoning instructions as its default system prompt, the tool definitions
# after the system turn, `[TOOL_CALLS]NAME[ARGS]{...}` calls (thoughts are `[THINK]` content blocks of its own)
MINISTRAL3_REASONING_SYSTEM = (
    "# HOW YOU SHOULD THINK AND ANSWER\n\nFirst draft your thinking process (inner monologue) until you"
    " arrive at a response. Format your response using Markdown, and use LaTeX for any mathematical "
    "equations. Write both your thoughts and the response in the same language as the input.\n\nYour "
    "thinking process must follow the template below:[THINK]Your thoughts or/and draft, like working "
    "through an exercise on scratch paper. Be as casual and as long as you want until you are confident"
    " to generate the response to the user.[/THINK]Here, provide a self-contained response.")
register_template("ministral3_reasoning",
                  **{**TEKKEN, "tool_format": "ministral3", "tools_position": "after_system",
                     "format_observation_item": "[TOOL_RESULTS]{{content}}[/TOOL_RESULTS]"},
                  default_system=MINISTRAL3_REASONING_SYSTEM, mm_plugin="pixtral", reference="ministral-3-reasoning",
                  description="Ministral 3 (3B / 8B / 14B) Reasoning 2512.")
