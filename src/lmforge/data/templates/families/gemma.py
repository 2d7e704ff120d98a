"""Google Gemma 1, 2, 3, 3n and PaliGemma: `model` turns, no system role (Gemma 3 folds it into the first turn)."""

from lmforge.data.templates.registry import register_template

GEMMA = dict(
    format_user="<start_of_turn>user\n{{content}}<end_of_turn>\n",
    format_generation="<start_of_turn>model\n",
    format_assistant="{{content}}<end_of_turn>",
    assistant_suffix="\n",
    strip_content=True,
    stop_words=("<end_of_turn>",),
)
register_template("gemma", **GEMMA, reference="gemma-it", description="Gemma 1 IT (the tokenizer adds bos).")
register_template("gemma2", **GEMMA, format_prefix="{{bos_token}}", reference="gemma-2-it",
                  description="Gemma 2 IT.")
register_template("gemma3", **GEMMA, format_prefix="{{bos_token}}", format_system="{{content}}\n\n",
                  system_in_user=True, mm_plugin="gemma3", reference="gemma-3-it",
                  description="Gemma 3 IT: the system prompt opens the first user turn.")
register_template("paligemma", **GEMMA, format_prefix="{{bos_token}}", mm_plugin="paligemma",
                  description="PaliGemma 2 mix (Gemma turns; image tokens from the plugin).")
register_template("paligemma_chat", **GEMMA, format_prefix="{{bos_token}}", format_system="{{content}}\n\n",
                  system_in_user=True, mm_plugin="paligemma",
                  description="PaliGemma chat fine-tunes (Gemma 3 turns).")
register_template("gemma3n", **GEMMA, format_prefix="{{bos_token}}", format_system="{{content}}\n\n",
                  system_in_user=True, mm_plugin="gemma3n", reference="gemma-3n",
                  description="Gemma 3n E2B / E4B IT: Gemma 3 turns (image and audio tokens from the plugin).")
