"""SmolLM3 (HuggingFaceTB/SmolLM3-3B): ChatML whose system turn is always written, with a metadata header (today's
date, the reasoning mode), the custom instructions (the system prompt, else the mode's default) and a tools section.
`smollm3` is the reasoning mode (`/think`, the model's default): answers as written, thoughts kept in the history;
`smollm3_nothink` (`/no_think`) opens every answer with an empty think block, which its header carries.
No reference (docs/templates.md says why); the format is the model's chat template as its published copies show it."""

from lmforge.data.templates.registry import register_template

_SYSTEM = ("<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\nToday Date: {{date}}\nReasoning Mode: "
           "{mode}\n\n## Custom Instructions\n\n{{content}}\n\n## Tools\n\n### XML Tools\n\n{{tools}}\n\n"
           "### Python Tools\n\nNone\n\n<|im_end|>\n")
_THINKING_INSTRUCTIONS = (
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face. Your role as an assistant involves "
    "thoroughly exploring questions through a systematic thinking process before providing the final precise and "
    "accurate solutions. This requires engaging in a comprehensive cycle of analysis, summarizing, exploration, "
    "reassessment, reflection, backtracking, and iteration to develop well-considered thinking process. Please "
    "structure your response into two main sections: Thought and Solution using the specified format: <think> "
    "Thought section </think> Solution section. In the Thought section, detail your reasoning process in steps. "
    "Each step should include detailed considerations such as analysing questions, summarizing relevant findings, "
    "brainstorming new ideas, verifying the accuracy of the current steps, refining any errors, and revisiting "
    "previous steps. In the Solution section, based on various attempts, explorations, and reflections from the "
    "Thought section, systematically present the final solution that you deem correct. The Solution section should "
    "be logical, accurate, and concise and detail necessary steps needed to reach the conclusion.")
SMOLLM3 = dict(
    format_user="<|im_start|>user\n{{content}}<|im_end|>\n",
    format_assistant="{{content}}<|im_end|>",
    assistant_suffix="\n",
    system_always=True,
    date_format="%d %B %Y",
    tool_format="smollm3",
    tools_position="in_system",
    tools_always=True,  # its system turn says `None` under "XML Tools" without tools
    format_observation="{{content}}",
    format_observation_item="<|im_start|>user\n{{content}}<|im_end|>\n",
    stop_words=("<|im_end|>",),
)
register_template("smollm3", **SMOLLM3, format_system=_SYSTEM.replace("{mode}", "/think"),
                  format_generation="<|im_start|>assistant\n", default_system=_THINKING_INSTRUCTIONS,
                  thought_words=("<think>", "</think>"),
                  description="SmolLM3-3B in its reasoning mode (`/think`, the default).")
register_template("smollm3_nothink", **SMOLLM3, format_system=_SYSTEM.replace("{mode}", "/no_think"),
                  format_generation="<|im_start|>assistant\n<think>\n\n</think>\n",
                  default_system="You are a helpful AI assistant named SmolLM, trained by Hugging Face.",
                  description="SmolLM3-3B with reasoning off (`/no_think`): an empty think block opens every answer.")
