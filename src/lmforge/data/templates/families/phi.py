"""Microsoft Phi-3 (mini, small, medium), Phi-4, Phi-4-mini and Phi-4-multimodal."""

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

register_template(
    "phi4_reasoning",
    format_system="<|im_start|>system<|im_sep|>{{content}}<|im_end|>",
    format_user="<|im_start|>user<|im_sep|>{{content}}<|im_end|>",
    format_generation="<|im_start|>assistant<|im_sep|>",
    format_assistant="{{content}}<|im_end|>",
    system_always=True,
    thought_words=("<think>", "</think>"),
    default_system=(
        "You are Phi, a language model trained by Microsoft to help users. Your role as an assistant involves "
        "thoroughly exploring questions through a systematic thinking process before providing the final precise "
        "and accurate solutions. This requires engaging in a comprehensive cycle of analysis, summarizing, "
        "exploration, reassessment, reflection, backtracing, and iteration to develop well-considered thinking "
        "process. Please structure your response into two main sections: Thought and Solution using the specified "
        "format: <think> {Thought section} </think> {Solution section}. In the Thought section, detail your "
        "reasoning process in steps. Each step should include detailed considerations such as analysing questions, "
        "summarizing relevant findings, brainstorming new ideas, verifying the accuracy of the current steps, "
        "refining any errors, and revisiting previous steps. In the Solution section, based on various attempts, "
        "explorations, and reflections from the Thought section, systematically present the final solution that "
        "you deem correct. The Solution section should be logical, accurate, and concise and detail necessary "
        "steps needed to reach the conclusion. Now, try to solve the following question through the above "
        "guidelines:"),
    stop_words=("<|im_end|>",),
    reference="phi-4-reasoning",
    description="Phi-4-reasoning (-plus): Phi-4 turns, a fixed reasoning system prompt, thoughts kept in history.",
)
PHI4_MINI = dict(
    format_system="<|system|>{{content}}<|end|>",
    format_user="<|user|>{{content}}<|end|>",
    format_generation="<|assistant|>",
    format_assistant="{{content}}<|end|>",
    stop_words=("<|end|>",),
    replace_eos=True,
)
register_template("phi4_mini", **PHI4_MINI,
                  description="Phi-4-mini-instruct / -reasoning: Phi-3 role tokens without newlines.")
register_template("phi4_multimodal", **PHI4_MINI, format_end="{{eos_token}}", mm_plugin="phi4_multimodal",
                  reference="phi-4-multimodal",
                  description="Phi-4-multimodal-instruct: Phi-4-mini turns; eos closes a conversation without a "
                              "generation prompt.")
