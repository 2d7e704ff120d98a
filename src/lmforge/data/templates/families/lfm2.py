"""Liquid AI LFM2 / LFM2-VL: ChatML after bos (`<|startoftext|>`)."""

from lmforge.data.templates.families.chatml import CHATML
from lmforge.data.templates.registry import register_template

register_template("lfm2", **CHATML, format_prefix="{{bos_token}}", reference="lfm2", family_references=("lfm2.5",),
                  description="LFM2 / LFM2.5: ChatML after bos, no default system.")
register_template("lfm2_vl", **CHATML, format_prefix="{{bos_token}}", mm_plugin="lfm2_vl",
                  default_system="You are a helpful multimodal assistant by Liquid AI.",
                  description="LFM2-VL (its default system prompt, as LLaMA-Factory registers it).")
