"""IBM Granite 4.0 / 4.1 (`<|start_of_role|>` turns, Qwen-style `<tool_call>` blocks, results in a user turn) and
Granite Vision 3.x. (Granite 3.x text is in vendors.py.)"""

from lmforge.data.templates.registry import register_template

GRANITE4 = dict(
    format_system="<|start_of_role|>system<|end_of_role|>{{content}}<|end_of_text|>\n",
    format_user="<|start_of_role|>user<|end_of_role|>{{content}}<|end_of_text|>\n",
    format_generation="<|start_of_role|>assistant<|end_of_role|>",
    format_assistant="{{content}}<|end_of_text|>",
    assistant_suffix="\n",
    tool_format="granite4",
    format_observation="<|start_of_role|>user<|end_of_role|>{{content}}<|end_of_text|>\n",
    format_observation_item="\n<tool_response>\n{{content}}\n</tool_response>",
    stop_words=("<|end_of_text|>",),
)
register_template("granite4", **GRANITE4,
                  default_system="You are a helpful assistant. Please ensure responses are professional, accurate, "
                                 "and safe.",
                  reference="granite-4.0",
                  description="Granite 4.0 (H-Tiny, H-Small, Micro ...): its default system prompt when none is given.")
register_template("granite4_1", **GRANITE4, reference="granite-4.1", description="Granite 4.1 (no default system).")
register_template(
    "granite3_vision",
    format_system="<|system|>\n{{content}}\n",
    format_user="<|user|>\n{{content}}\n",
    format_generation="<|assistant|>\n",
    format_assistant="{{content}}{{eos_token}}",
    assistant_suffix="\n",
    default_system="A chat between a curious user and an artificial intelligence assistant. The assistant gives "
                   "helpful, detailed, and polite answers to the user's questions.",
    mm_plugin="llava_next",
    description="Granite Vision 3.x (LLaVA-NeXT on Granite).",
)
