"""DeepSeek: V2 chat, V3, R1 (reasoning), V3.1 (non-thinking) and Coder; DeepSeek's tool calls."""

from lmforge.data.templates.registry import register_template

DEEPSEEK3 = dict(
    format_prefix="{{bos_token}}",
    format_system="{{content}}",
    format_user="<｜User｜>{{content}}",
    format_generation="<｜Assistant｜>",
    format_assistant="{{content}}<｜end▁of▁sentence｜>",
    stop_words=("<｜end▁of▁sentence｜>",),
)
# DeepSeek's tool protocol: definitions appended to the system prompt (the templates write none; V3.1's model
# card gives the text), calls inside <｜tool▁calls▁begin｜>, results as <｜tool▁output▁begin｜> blocks, and the
# answer after the results without an assistant header (nor a think block): the model answers straight on.
DEEPSEEK3_TOOLS = dict(
    tool_format="deepseek3",
    format_observation="<｜tool▁outputs▁begin｜>{{content}}<｜tool▁outputs▁end｜>",
    format_observation_item="<｜tool▁output▁begin｜>{{content}}<｜tool▁output▁end｜>",
    format_generation_after_tools="",
    format_generation_calls_after_tools="<｜Assistant｜>",
)
register_template("deepseek3", **DEEPSEEK3, **DEEPSEEK3_TOOLS, reference="deepseek-v3",
                  description="DeepSeek-V3 chat, with DeepSeek's tool calls.")
register_template("deepseekr1", **DEEPSEEK3, **DEEPSEEK3_TOOLS, observation_separator="\n",
                  thought_words=("<think>", "</think>"), thoughts_in_history=False,
                  thought_prefill="<think>\n", reference="deepseek-r1-distill-qwen",
                  description="DeepSeek-R1 and its distills: the generation prompt opens a think block.")
register_template("deepseek3.1", **{**DEEPSEEK3, "format_generation": "<｜Assistant｜></think>"},
                  tool_format="deepseek3.1", format_observation="{{content}}",
                  format_observation_item="<｜tool▁output▁begin｜>{{content}}<｜tool▁output▁end｜>",
                  format_generation_after_tools="",
                  reference="deepseek-v3.1", description="DeepSeek-V3.1 in non-thinking mode (its tool-call mode).")
register_template(
    "deepseek",
    format_prefix="{{bos_token}}",
    format_system="{{content}}\n\n",
    format_user="User: {{content}}\n\nAssistant:",
    format_assistant=" {{content}}{{eos_token}}",
    description="DeepSeek-LLM / V2 Chat.",
)
register_template(
    "deepseekcoder",
    format_prefix="{{bos_token}}",
    format_system="{{content}}",
    format_user="### Instruction:\n{{content}}\n",
    format_generation="### Response:\n",
    format_assistant="{{content}}\n<|EOT|>",
    assistant_suffix="\n",
    default_system="You are an AI programming assistant, utilizing the Deepseek Coder model, developed by Deepseek "
                   "Company, and you only answer questions related to computer science. For politically sensitive "
                   "questions, security and privacy issues, and other non-computer science questions, you will "
                   "refuse to answer\n",
    stop_words=("<|EOT|>",),
    reference="deepseek-coder-instruct",
    description="DeepSeek-Coder Instruct.",
)
