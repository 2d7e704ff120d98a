"""ChatML and the families that use it as is: Qwen 2/2.5 (with Qwen's tool calls), SmolLM2, Yi, ..."""

from lmforge.data.templates.registry import register_template

CHATML = dict(
    format_user="<|im_start|>user\n{{content}}<|im_end|>\n",
    format_generation="<|im_start|>assistant\n",
    format_assistant="{{content}}<|im_end|>",
    assistant_suffix="\n",
    format_system="<|im_start|>system\n{{content}}<|im_end|>\n",
    stop_words=("<|im_end|>",),
    replace_eos=True,
)
# Qwen's tool protocol: definitions in the system turn, `<tool_call>` blocks in answers, and a run of
# tool results as one user turn of `<tool_response>` blocks.
QWEN_TOOLS = dict(
    tool_format="qwen",
    format_observation="<|im_start|>user{{content}}<|im_end|>\n",
    format_observation_item="\n<tool_response>\n{{content}}\n</tool_response>",
)
HELPFUL = "You are a helpful assistant."

register_template("chatml", **CHATML, reference="chatml", aliases=("smollm",),
                  description="Plain ChatML, no default system (SmolLM, SmolLM2 without its default system).")
register_template("smollm2", **CHATML,
                  default_system="You are a helpful AI assistant named SmolLM, trained by Hugging Face",
                  reference="smollm2-instruct", description="HuggingFaceTB SmolLM2 Instruct.")
register_template("qwen", **CHATML, **QWEN_TOOLS,
                  default_system="You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
                  reference="qwen2.5-instruct", aliases=("qwen2.5",),
                  description="Qwen2.5 Instruct (ChatML with Qwen's default system and tool calls).")
register_template("qwen2", **CHATML, default_system=HELPFUL, reference="qwen2-instruct",
                  description="Qwen2 / Qwen1.5 Chat.")
register_template("qwen2_vl", **CHATML, default_system=HELPFUL, mm_plugin="qwen2_vl", reference="qwen2-vl",
                  aliases=("qwen2.5_vl",),
                  description="Qwen2-VL / Qwen2.5-VL Instruct (text turns; images via the plugin).")
register_template("qwen2_audio", **CHATML, default_system=HELPFUL, mm_plugin="qwen2_audio",
                  family_references=("qwen2-instruct",),
                  description="Qwen2-Audio Instruct.")
register_template("minicpm_v", **CHATML, default_system=HELPFUL, mm_plugin="minicpm_v", remote_code=True,
                  description="MiniCPM-V 2.6 / MiniCPM-o.")
register_template("yi", **{**CHATML, "format_system": "{{content}}"}, reference="yi-chat",
                  description="Yi / Yi-1.5 Chat: ChatML, the system prompt written bare before the first turn.")
register_template("intern2", **CHATML, format_prefix="{{bos_token}}", reference="internlm2-chat",
                  tool_format="internlm2", format_tools="<|im_start|>system name=<|plugin|>\n{{content}}<|im_end|>\n",
                  tools_position="after_system", format_observation="{{content}}",
                  format_observation_item="<|im_start|>environment name=<|plugin|>\n{{content}}<|im_end|>\n",
                  aliases=("internlm2",),
                  description="InternLM2 / 2.5 Chat: ChatML after bos; InternLM's plugin protocol for tools.")
register_template(
    "intern_vl", **CHATML, mm_plugin="intern_vl",
    default_system="你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的多模态大语言模型。",
    description="InternVL 2.5 / 3 chat (ChatML with InternVL's default system).")
# OLMo 3: the system turn says when there are no functions; definitions follow the system prompt, pythonic
# calls in <function_calls>, each result a `tool` turn.
register_template("olmo3", **{**CHATML, "format_system": "<|im_start|>system\n{{content}}\nYou do not currently "
                                                         "have access to any functions.<|im_end|>\n"},
                  format_system_tools=CHATML["format_system"], tools_separator_always=True, tool_format="olmo3",
                  format_observation="{{content}}", format_observation_item="<|im_start|>tool\n{{content}}<|im_end|>\n",
                  system_always=True, default_system="You are a helpful function-calling AI assistant.",
                  reference="olmo-3-tool", description="OLMo 3 Instruct (ChatML; pythonic tool calls).")

# Hermes 2 Pro / 3 pick their `tool_use` template when tools are given: a function-calling system turn
# of its own (before any system prompt), `<tool_call>` answers, results in a `tool` turn. Without tools
# the model's `default` template applies: ChatML after bos.
HERMES_PREAMBLE = (
    "<|im_start|>system\nYou are a function calling AI model. You are provided with function signatures within "
    "<tools></tools> XML tags. You may call one or more functions to assist with the user query. Don't make "
    "assumptions about what values to plug into functions. Here are the available tools: <tools> {{content}} "
    '</tools>Use the following pydantic model json schema for each tool call you will make: {"properties": {"name": '
    '{"title": "Name", "type": "string"}, "arguments": {"title": "Arguments", "type": "object"}}, "required": '
    '["name", "arguments"], "title": "FunctionCall", "type": "object"}}\nFor each function call return a json object '
    "with function name and arguments within <tool_call></tool_call> XML tags as follows:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-dict>}\n</tool_call><|im_end|>\n')
register_template("hermes3", **CHATML, format_prefix="{{bos_token}}", tool_format="hermes3",
                  format_tools=HERMES_PREAMBLE, tools_position="before_system",
                  format_observation="<|im_start|>tool\n{{content}}<|im_end|>",
                  format_observation_item="<tool_response>\n{{content}}\n</tool_response>\n",
                  reference="hermes-3-tool-use", aliases=("hermes2_pro",),
                  description="Hermes 3 / Hermes 2 Pro: ChatML after bos; with tools, their tool_use template.")
