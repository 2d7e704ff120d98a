"""Qwen's vision and omni models, text turns: Qwen3-VL (Instruct and Thinking), Qwen2.5-Omni, Qwen3-Omni. Images,
video and audio are placed by the multimodal plugin (`mm_plugin`)."""

from lmforge.data.templates.families.chatml import CHATML, HELPFUL, QWEN_TOOLS
from lmforge.data.templates.families.qwen3 import THINKING
from lmforge.data.templates.registry import register_template

register_template("qwen3_vl_nothink", **CHATML, **QWEN_TOOLS, mm_plugin="qwen3_vl", reference="qwen3-vl-instruct",
                  aliases=("qwen3_vl_instruct",),
                  description="Qwen3-VL-*-Instruct: ChatML, Qwen's tool calls, no default system, no think blocks.")
register_template("qwen3_vl", **CHATML, **QWEN_TOOLS, **THINKING, mm_plugin="qwen3_vl",
                  description="Qwen3-VL-*-Thinking: as Qwen3-VL Instruct, thoughts of earlier turns dropped.")
register_template("qwen2_omni", **CHATML, default_system=HELPFUL, mm_plugin="qwen2_5_omni", reference="qwen2.5-omni",
                  aliases=("qwen2.5_omni",), description="Qwen2.5-Omni (ChatML, default system).")
register_template("qwen3_omni", **CHATML, **QWEN_TOOLS, **THINKING, mm_plugin="qwen3_omni_moe",
                  description="Qwen3-Omni Thinking.")
register_template("qwen3_omni_nothink", **CHATML, **QWEN_TOOLS, mm_plugin="qwen3_omni_moe",
                  description="Qwen3-Omni Instruct.")
