"""Meta Llama 3 (8B/70B Instruct)."""

from lmforge.data.templates.registry import register_template

register_template(
    "llama3",
    format_prefix="{{bos_token}}",
    format_system="<|start_header_id|>system<|end_header_id|>\n\n{{content}}<|eot_id|>",
    format_user="<|start_header_id|>user<|end_header_id|>\n\n{{content}}<|eot_id|>",
    format_generation="<|start_header_id|>assistant<|end_header_id|>\n\n",
    format_assistant="{{content}}<|eot_id|>",
    stop_words=("<|eot_id|>", "<|eom_id|>"),
    strip_content=True,
    reference="llama-3-instruct",
    description="Llama 3 Instruct; message content is trimmed as in Meta's template.",
)
