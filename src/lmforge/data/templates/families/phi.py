"""Microsoft Phi-3 (mini, small, medium) and Phi-4."""

from lmforge.data.templates.registry import register_template

PHI3 = dict(
    format_system="<|system|>\n{{content}}<|end|>\n",
    format_user="<|user|>\n{{content}}<|end|>\n<|assistant|>\n",
    format_assistant="{{content}}<|end|>",
    assistant_suffix="\n",
    stop_words=("<|end|>",),
)
register_template("phi", **PHI3, format_prefix="{{bos_token}}", reference="phi-3-mini", aliases=("phi3",),
                  description="Phi-3 / 3.5 mini: the assistant header follows every user turn.")
register_template("phi_medium", **PHI3, reference="phi-3-medium", description="Phi-3 medium (no bos).")
register_template(
    "phi_small",
    format_prefix="{{bos_token}}",
    format_system="<|system|>\n{{content}}<|end|>\n",
    format_user="<|user|>\n{{content}}<|end|>\n",
    format_generation="<|assistant|>\n",
    format_assistant="{{content}}<|end|>",
    assistant_suffix="\n",
    format_end="{{eos_token}}",
    stop_words=("<|end|>",),
    reference="phi-3-small",
    description="Phi-3 small (tiktoken): eos closes a conversation without a generation prompt.",
)
register_template(
    "phi4",
    format_system="<|im_start|>system<|im_sep|>{{content}}<|im_end|>",
    format_user="<|im_start|>user<|im_sep|>{{content}}<|im_end|><|im_start|>assistant<|im_sep|>",
    format_assistant="{{content}}<|im_end|>",
    stop_words=("<|im_end|>",),
    reference="phi-4",
    description="Phi-4: ChatML-like with <|im_sep|> and no newlines.",
)
