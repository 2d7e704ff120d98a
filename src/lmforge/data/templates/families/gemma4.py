"""Google Gemma 4: `<|turn>ROLE ... <turn|>` turns with a system role, thoughts in `<|channel>thought ... <channel|>`.
`gemma4` is the large models' template (26B / 31B: a thinking-off generation prompt closes an empty thought
channel), `gemma4n` the small ones' (E2B / E4B)."""

from lmforge.data.templates.registry import register_template

GEMMA4 = dict(
    format_prefix="{{bos_token}}",
    format_system="<|turn>system\n{{content}}<turn|>\n",
    format_user="<|turn>user\n{{content}}<turn|>\n",
    format_generation="<|turn>model\n",
    format_assistant="{{content}}<turn|>",
    assistant_suffix="\n",
    thought_words=("<|channel>thought\n", "<channel|>"),
    format_thought="<|channel>thought\n{{content}}<channel|>",
    thoughts_in_history=False,
    default_thinking="false",
    stop_words=("<turn|>", "<|tool_response>"),
    replace_eos=True,
    # tools: definitions at the end of the system turn; an answer's calls end with `<|tool_response>` (where the model
    # stops for the results), the results follow inside the same model turn, and so does the answer after them
    tool_format="gemma4",
    tools_separator="",
    format_function="{{content}}<|tool_response>",
    function_suffix="",
    format_observation="{{content}}",
    format_observation_item='response:{{call_name}}{value:<|"|>{{content}}<|"|>}<tool_response|>',
    observation_separator="<|tool_response>",
    format_generation_after_tools="",
)
register_template("gemma4", **GEMMA4, thought_prefill="<|channel>thought\n<channel|>", mm_plugin="gemma4",
                  reference="gemma-4", description="Gemma 4 26B / 31B IT (thinking off by default).")
register_template("gemma4n", **GEMMA4, mm_plugin="gemma4", reference="gemma-4-e2b",
                  description="Gemma 4 E2B / E4B IT (thinking off by default).")
