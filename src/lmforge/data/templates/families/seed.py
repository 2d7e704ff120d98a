"""ByteDance Seed-Coder and Seed-OSS: each turn opens with bos and the role on its own line and ends with eos."""

from lmforge.data.templates.registry import register_template

SEED = dict(
    format_system="{{bos_token}}system\n{{content}}{{eos_token}}",
    format_user="{{bos_token}}user\n{{content}}{{eos_token}}",
    format_generation="{{bos_token}}assistant\n",
    format_assistant="{{content}}{{eos_token}}",
)
register_template(
    "seed_coder", **SEED,
    default_system="You are an AI programming assistant, utilizing the Seed-Coder model, developed by ByteDance Seed, "
                   "and you only answer questions related to computer science. For politically sensitive questions, "
                   "security and privacy issues, and other non-computer science questions, you will refuse to "
                   "answer.\n\n",
    description="Seed-Coder-8B Instruct / Reasoning.")
# Seed-OSS appends its tool definitions to the system prompt (a default one when there is none) and writes each
# tool result as a `tool` turn; its template writes a thought, then a line break, then the answer
register_template("seed_oss", **SEED, thought_words=("<seed:think>", "</seed:think>"),
                  format_thought="<seed:think>{{content}}</seed:think>\n", thoughts_in_history=False,
                  tool_format="seed_oss", tools_separator="", format_observation="{{content}}",
                  format_observation_item="{{bos_token}}tool\n{{content}}{{eos_token}}",
                  default_system_tools="You are Doubao, a helpful AI assistant. You may call one or more functions to "
                                       "assist with the user query.",
                  description="Seed-OSS-36B Instruct (reasoning in `<seed:think>` blocks).")
