"""Vendor chat formats with their own role tokens: Cohere, Granite, OLMo 2, Kimi-VL, EXAONE, ..."""

from lmforge.data.templates.registry import register_template

register_template(
    "cohere",
    format_prefix="{{bos_token}}",
    format_system="<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>{{content}}<|END_OF_TURN_TOKEN|>",
    format_user="<|START_OF_TURN_TOKEN|><|USER_TOKEN|>{{content}}<|END_OF_TURN_TOKEN|>",
    format_generation="<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>",
    format_assistant="{{content}}<|END_OF_TURN_TOKEN|>",
    stop_words=("<|END_OF_TURN_TOKEN|>",),
    description="Cohere Command-R / R+ / Aya (without Cohere's long default preamble).",
)
GRANITE_DATED = "Knowledge Cutoff Date: April 2024. Today's Date: {{date}}. You are Granite, developed by IBM."
register_template(
    "granite3",
    format_system="<|start_of_role|>system<|end_of_role|>{{content}}<|end_of_text|>\n",
    format_user="<|start_of_role|>user<|end_of_role|>{{content}}<|end_of_text|>\n",
    format_generation="<|start_of_role|>assistant<|end_of_role|>",
    format_assistant="{{content}}<|end_of_text|>",
    assistant_suffix="\n",
    format_observation="{{content}}",
    format_observation_item="<|start_of_role|>tool<|end_of_role|>{{content}}<|end_of_text|>\n",
    format_tools="<|start_of_role|>available_tools<|end_of_role|>{{content}}<|end_of_text|>\n",
    tools_position="after_system",
    tool_format="granite",
    # Granite's own default system prompt names today's date (its template's strftime_now), as here
    default_system=GRANITE_DATED + " You are a helpful AI assistant.",
    default_system_tools=GRANITE_DATED + " You are a helpful assistant with access to the following tools. When a "
    "tool is required to answer the user's query, respond only with <|tool_call|> followed by a JSON list of tools "
    "used. If a tool does not exist in the provided list of tools, notify the user that you do not have the ability "
    "to fulfill the request.",
    date_format="%B %d, %Y",
    stop_words=("<|end_of_text|>",),
    reference="granite-3.3-instruct",
    description="IBM Granite 3.x Instruct (dated default system prompt, `<|tool_call|>` JSON tool calls).",
)
register_template(
    "olmo",
    format_prefix="{{eos_token}}",
    format_system="<|system|>\n{{content}}\n",
    format_user="<|user|>\n{{content}}\n",
    format_generation="<|assistant|>\n",
    format_assistant="{{content}}{{eos_token}}",
    assistant_suffix="\n",
    description="OLMo 2 Instruct (Tülu format).",
)
register_template(
    "kimi_vl",
    format_system="<|im_system|>system<|im_middle|>{{content}}<|im_end|>",
    format_user="<|im_user|>user<|im_middle|>{{content}}<|im_end|>",
    format_generation="<|im_assistant|>assistant<|im_middle|>",
    format_assistant="{{content}}<|im_end|>",
    default_system="You are a helpful assistant",
    stop_words=("<|im_end|>",),
    mm_plugin="kimi_vl",
    remote_code=True,
    description="Kimi-VL-A3B Instruct / Thinking.",
)
register_template(
    "exaone",
    format_system="[|system|]{{content}}[|endofturn|]\n",
    format_user="[|user|]{{content}}\n[|assistant|]",
    format_assistant="{{content}}[|endofturn|]",
    assistant_suffix="\n",
    stop_words=("[|endofturn|]",),
    description="LG EXAONE 3.0 / 3.5 Instruct.",
)
# EXAONE 4 (non-reasoning mode, its default): role lines, and an empty think block opening every answer, history
# included, which the header carries (the model answers after it). No reference: the model's license (EXAONE AI
# Model License, non-commercial) keeps its template out of this repository and refdata has none; the format is the
# one Ollama's EXAONE 4 renderer writes.
register_template(
    "exaone4",
    format_system="[|system|]\n{{content}}[|endofturn|]\n",
    format_user="[|user|]\n{{content}}[|endofturn|]\n",
    format_generation="[|assistant|]\n<think>\n\n</think>\n\n",
    format_assistant="{{content}}[|endofturn|]",
    assistant_suffix="\n",
    tool_format="exaone4",
    format_observation="[|tool|]\n{{content}}[|endofturn|]\n",
    format_observation_item='<tool_result>{"result": {{content_json}}}</tool_result>',
    observation_separator="\n",
    stop_words=("[|endofturn|]",),
    description="LG EXAONE 4.0 (32B, 1.2B) in its non-reasoning mode; tool calls as `<tool_call>` JSON.",
)
register_template(
    "telechat2",
    format_system="<_system>{{content}}",
    format_user="<_user>{{content}}<_bot>",
    format_assistant="{{content}}<_end>",
    stop_words=("<_end>",),
    description="TeleChat2.",
)
register_template(
    "nemotron_nano_v2",
    format_system="<SPECIAL_10>System\n{{content}}\n\n",
    system_always=True,
    format_user="<SPECIAL_11>User\n{{content}}\n",
    format_generation="<SPECIAL_11>Assistant\n",
    format_assistant="{{content}}\n<SPECIAL_12>",
    assistant_suffix="\n",
    format_observation="<SPECIAL_11>User\n<TOOL_RESPONSE>[{{content}}]</TOOL_RESPONSE>",
    observation_separator=", ",
    tool_format="nemotron",
    strip_content=True,
    # The generation prompt opens a think block and the final answer is trained after it, as generated;
    # earlier answers lose their thoughts (its template keeps only the last answer's).
    thought_words=("<think>", "</think>"),
    format_thought="{{content}}\n</think>\n\n",
    thought_prefill="<think>\n",
    prefill_final_answer=True,
    thoughts_in_history=False,
    stop_words=("<SPECIAL_12>",),
    reference="nemotron-nano-v2",
    aliases=("nemotron",),
    description="NVIDIA Nemotron Nano 9B v2 (thinking switched by /think and /no_think in the system prompt).",
)
register_template(
    "moonlight",
    format_system="<|im_system|>system<|im_middle|>{{content}}<|im_end|>",
    format_user="<|im_user|>user<|im_middle|>{{content}}<|im_end|>",
    format_generation="<|im_assistant|>assistant<|im_middle|>",
    format_assistant="{{content}}<|im_end|>",
    default_system="You are a helpful assistant provided by Moonshot-AI.",
    stop_words=("<|im_end|>",),
    replace_eos=True,
    description="Moonshot Moonlight-16B-A3B Instruct (Kimi role tokens).",
)
register_template(
    "bailing",
    format_system="<role>SYSTEM</role>{{content}}",
    format_user="<role>HUMAN</role>{{content}}",
    format_generation="<role>ASSISTANT</role>",
    format_assistant="{{content}}",
    format_observation="<role>OBSERVATION</role>{{content}}",
    efficient_eos=True,
    stop_words=("<|endoftext|>",),
    description="inclusionAI Ling / Bailing Lite and Plus (no end-of-turn token: training appends eos).",
)
register_template(
    "bailing_v2",
    format_system="<role>SYSTEM</role>{{content}}<|role_end|>",
    format_user="<role>HUMAN</role>{{content}}<|role_end|>",
    format_generation="<role>ASSISTANT</role>",
    format_assistant="{{content}}<|role_end|>",
    format_observation="<role>OBSERVATION</role>\n<tool_response>\n{{content}}\n</tool_response><|role_end|>",
    efficient_eos=True,
    stop_words=("<|endoftext|>",),
    description="inclusionAI Ling 2.0 / Ring 2.0 (`<|role_end|>` ends a turn; training appends eos).",
)
register_template(
    "youtu",
    format_prefix="{{bos_token}}",
    format_system="{{content}}",
    format_user="<|User|>{{content}}",
    format_generation="<|Assistant|>",
    format_assistant="{{content}}<|end_of_text|>",
    format_observation="<tool_response>\n{{content}}\n</tool_response>",
    thought_words=("<think>", "</think>"),
    thoughts_in_history=False,
    stop_words=("<|end_of_text|>",),
    replace_eos=True,
    description="Tencent Youtu-LLM (reasoning).",
)
register_template(
    "youtu_vl",
    format_system="<|begin_of_text|>system\n{{content}}<|end_of_text|>\n",
    format_user="<|begin_of_text|>user\n{{content}}<|end_of_text|>\n",
    format_generation="<|begin_of_text|>assistant\n",
    format_assistant="{{content}}<|end_of_text|>",
    assistant_suffix="\n",
    default_system="You are a helpful assistant.",
    stop_words=("<|end_of_text|>",),
    mm_plugin="youtu_vl",
    remote_code=True,
    description="Tencent Youtu-VL.",
)
register_template(
    "dots_ocr",
    format_system="<|system|>{{content}}<|endofsystem|>\n",
    format_user="<|user|>{{content}}<|endofuser|>",
    format_generation="<|assistant|>",
    format_assistant="{{content}}<|endofassistant|>",
    stop_words=("<|endofassistant|>",),
    mm_plugin="dots_ocr",
    remote_code=True,
    description="rednote dots.ocr.",
)
KIMI = dict(
    format_system="<|im_system|>system<|im_middle|>{{content}}<|im_end|>",
    format_user="<|im_user|>user<|im_middle|>{{content}}<|im_end|>",
    format_generation="<|im_assistant|>assistant<|im_middle|>",
    format_assistant="{{content}}<|im_end|>",
    default_system="You are Kimi, an AI assistant created by Moonshot AI.",
    stop_words=("<|im_end|>",),
    replace_eos=True,
    tool_format="kimi_k2",
    tools_position="before_system",
    format_tools="<|im_system|>tool_declare<|im_middle|>{{content}}<|im_end|>",
    format_observation="{{content}}",
    format_observation_item="<|im_system|>tool<|im_middle|>## Return of {{call_id}}\n{{content}}<|im_end|>",
)
register_template("kimi_k2_thinking", **KIMI, thought_words=("<think>", "</think>"),
                  format_thought="<think>{{content}}</think>", thoughts_in_history=False,
                  empty_thought="<think></think>", reference="kimi-k2-thinking",
                  description="Moonshot Kimi-K2-Thinking (an empty think block in every answer without a kept "
                              "thought).")
register_template("kimi_k2", **KIMI, description="Moonshot Kimi-K2 Instruct (Kimi role tokens, its default system; "
                                                 "tool calls named `functions.NAME:INDEX`).")
register_template(
    "apertus",
    format_prefix="{{bos_token}}",
    # the developer turn follows every system turn; it switches deliberation and tools, both off here
    format_system="<|system_start|>{{content}}<|system_end|><|developer_start|>Deliberation: disabled\nTool "
                  "Capabilities: disabled<|developer_end|>",
    system_always=True,
    default_system="You are Apertus, a helpful assistant created by the SwissAI initiative.\nKnowledge cutoff: "
                   "2024-04\nCurrent date: {{date}}",
    date_format="%Y-%m-%d",
    format_user="<|user_start|>{{content}}<|user_end|>",
    format_generation="<|assistant_start|>",
    format_assistant="{{content}}<|assistant_end|>",
    stop_words=("<|assistant_end|>",),
    reference="apertus",
    description="Swiss AI Apertus-8B / 70B Instruct (dated default system prompt; deliberation and tools off).",
)
