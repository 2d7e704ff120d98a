"""ChatML and the families that use it as is (Qwen 2/2.5, SmolLM2)."""

from lmforge.data.templates.registry import register_template

CHATML = dict(
    format_user="<|im_start|>user\n{{content}}<|im_end|>\n",
    format_generation="<|im_start|>assistant\n",
    format_assistant="{{content}}<|im_end|>",
    assistant_suffix="\n",
    format_system="<|im_start|>system\n{{content}}<|im_end|>\n",
    stop_words=("<|im_end|>",),
)

register_template("chatml", **CHATML, reference="chatml", description="Plain ChatML, no default system.")

register_template(
    "smollm2",
    **CHATML,
    default_system="You are a helpful AI assistant named SmolLM, trained by Hugging Face",
    reference="smollm2-instruct",
    description="HuggingFaceTB SmolLM2 Instruct.",
)

register_template(
    "qwen",
    **CHATML,
    default_system="You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
    reference="qwen2.5-instruct",
    description="Qwen2.5 Instruct (ChatML with Qwen's default system).",
    aliases=("qwen2.5",),
)

register_template(
    "qwen2",
    **CHATML,
    default_system="You are a helpful assistant.",
    reference="qwen2-instruct",
    description="Qwen2 / Qwen1.5 Chat.",
)
