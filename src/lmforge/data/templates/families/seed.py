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
register_template("seed_oss", **SEED, thought_words=("<seed:think>", "</seed:think>"),
                  format_thought="<seed:think>{{content}}</seed:think>", thoughts_in_history=False,
                  description="Seed-OSS-36B Instruct (reasoning in `<seed:think>` blocks).")
