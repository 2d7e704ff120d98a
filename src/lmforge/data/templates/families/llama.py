"""Meta Llama 2, 3, 3.2 (text and vision) and 4."""

from lmforge.data.templates.registry import register_template

register_template(
    "llama2",
    format_user="{{bos_token}}[INST] {{content}} [/INST]",
    format_assistant=" {{content}} {{eos_token}}",
    format_system="<<SYS>>\n{{content}}\n<</SYS>>\n\n",
    system_in_user=True,
    strip_content=True,
    stop_words=("</s>",),
    reference="llama-2-chat",
    description="Llama 2 Chat: the system prompt inside the first [INST]; content trimmed.",
)

register_template(
    "llama2_zh",
    format_user="{{bos_token}}[INST] {{content}} [/INST]",
    format_assistant=" {{content}} {{eos_token}}",
    format_system="<<SYS>>\n{{content}}\n<</SYS>>\n\n",
    system_in_user=True,
    strip_content=True,
    default_system="You are a helpful assistant. 你是一个乐于助人的助手。",
    stop_words=("</s>",),
    description="Chinese Llama 2 fine-tunes (Llama 2 turns, a bilingual default system prompt).",
)

LLAMA3 = dict(
    format_prefix="{{bos_token}}",
    format_system="<|start_header_id|>system<|end_header_id|>\n\n{{content}}<|eot_id|>",
    format_user="<|start_header_id|>user<|end_header_id|>\n\n{{content}}<|eot_id|>",
    format_generation="<|start_header_id|>assistant<|end_header_id|>\n\n",
    format_assistant="{{content}}<|eot_id|>",
    format_observation="<|start_header_id|>ipython<|end_header_id|>\n\n{{content}}<|eot_id|>",
    tool_format="llama3",
    stop_words=("<|eot_id|>", "<|eom_id|>"),
    strip_content=True,
    replace_eos=True,
)
register_template("llama3", **LLAMA3, reference="llama-3-instruct",
                  description="Llama 3 Instruct; message content is trimmed as in Meta's template.")

# Llama 3.1+ always write a system turn that starts with the knowledge cutoff and a date; with tools it
# names the ipython environment, the definitions open the first question, and each tool result is an
# `ipython` turn (written as a JSON string, as Meta's template does).
DATED = "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n{{content}}<|eot_id|>"
LLAMA31 = {
    **LLAMA3,
    "format_system": "<|start_header_id|>system<|end_header_id|>\n\n" + DATED,
    "format_system_tools": "<|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\n" + DATED,
    "system_always": True,
    "tools_in_first_user": True,
    "format_observation": "{{content}}",
    "format_observation_item": "<|start_header_id|>ipython<|end_header_id|>\n\n{{content_json}}<|eot_id|>",
}
register_template("llama3_2", **LLAMA31, reference="llama-3.2-instruct", aliases=("llama3.1", "llama3.3"),
                  family_references=("llama-3.1-instruct", "llama-3.3-instruct"),
                  description="Llama 3.1 / 3.2 / 3.3 Instruct (dated system turn, date fixed to Meta's default).")
register_template("mllama", **LLAMA31, mm_plugin="mllama", reference="llama-3.2-vision",
                  description="Llama 3.2 Vision Instruct.")

register_template(
    "llama4",
    format_prefix="{{bos_token}}",
    format_system="<|header_start|>system<|header_end|>\n\n{{content}}<|eot|>",
    format_user="<|header_start|>user<|header_end|>\n\n{{content}}<|eot|>",
    format_generation="<|header_start|>assistant<|header_end|>\n\n",
    format_assistant="{{content}}<|eot|>",
    # with tools: an ipython system turn (only when a system prompt is given), the definitions open the
    # first question, calls follow a <|python_start|> block of the answer's text, results are JSON strings
    format_system_tools="<|header_start|>system<|header_end|>\n\nEnvironment: ipython\n{{content}}<|eot|>",
    format_observation="{{content}}",
    format_observation_item="<|header_start|>ipython<|header_end|>\n\n{{content_json}}<|eot|>",
    tool_format="llama4",
    tools_in_first_user=True,
    stop_words=("<|eot|>", "<|eom|>"),
    replace_eos=True,
    mm_plugin="llama4",
    reference="llama-4",
    description="Llama 4 Scout / Maverick Instruct.",
)
