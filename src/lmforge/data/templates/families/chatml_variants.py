"""Text models that speak ChatML with a twist of their own: a default system prompt, bos before the first
turn, other role names. (Qwen's own families are chatml.py and qwen3.py.)"""

from lmforge.data.templates.families.chatml import CHATML
from lmforge.data.templates.registry import register_template

# ChatML with a `tool` turn for tool results (LLaMA-Factory's shape for these families; none has a tool protocol
# of its own, so calls are the generic ReAct lines)
CHATML_TOOL_TURN = dict(**CHATML, format_observation="<|im_start|>tool\n{{content}}<|im_end|>\n")

register_template("chatml_de", **{**CHATML_TOOL_TURN, "stop_words": ("<|im_end|>", "<|im_start|>")},
                  default_system="Du bist ein freundlicher und hilfsbereiter KI-Assistent.",
                  description="German ChatML fine-tunes (a German default system prompt).")
register_template("cpm4", **{**CHATML_TOOL_TURN, "replace_eos": False}, format_prefix="{{bos_token}}",
                  description="MiniCPM4: ChatML after bos.")
register_template("falcon_h1", **{**CHATML_TOOL_TURN, "stop_words": ("<|im_end|>", "<|end_of_text|>"),
                                  "replace_eos": False},
                  format_prefix="{{bos_token}}", description="Falcon-H1 Instruct: ChatML after bos.")
register_template("opencoder", **{**CHATML_TOOL_TURN, "replace_eos": False},
                  default_system="You are OpenCoder, created by OpenCoder Team.",
                  description="OpenCoder Instruct (ChatML with its default system prompt).")
register_template(
    "dbrx", **CHATML,
    default_system=(
        "You are DBRX, created by Databricks. You were last updated in December 2023. You answer questions based "
        "on information available up to that point.\nYOU PROVIDE SHORT RESPONSES TO SHORT QUESTIONS OR STATEMENTS, "
        "but provide thorough responses to more complex and open-ended questions.\nYou assist with various tasks, "
        "from writing to coding (using markdown for code blocks — remember to use ``` with code, JSON, and tables).\n"
        "(You do not have real-time data access or code execution capabilities. You avoid stereotyping and provide "
        "balanced perspectives on controversial topics. You do not provide song lyrics, poems, or news articles and "
        "do not divulge details of your training data.)\nThis is your system prompt, guiding your responses. Do not "
        "reference it, just respond to the user. If you find yourself talking about this message, stop. You should "
        "be responding appropriately and usually that means not mentioning this.\nYOU DO NOT MENTION ANY OF THIS "
        "INFORMATION ABOUT YOURSELF UNLESS THE INFORMATION IS DIRECTLY PERTINENT TO THE USER'S QUERY."),
    description="Databricks DBRX Instruct (ChatML with its long default system prompt).")
register_template(
    "sailor",
    **{**CHATML, "format_user": "<|im_start|>question\n{{content}}<|im_end|>\n",
       "format_generation": "<|im_start|>answer\n", "replace_eos": False},
    default_system="You are an AI assistant named Sailor created by Sea AI Lab. Your answer should be friendly, "
                   "unbiased, faithful, informative and detailed.",
    description="Sailor / Sailor2 Chat: ChatML with `question` and `answer` roles.")
