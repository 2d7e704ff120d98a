"""Xiaomi MiMo (7B RL/SFT), MiMo-V2 and MiMo-VL: Qwen-style ChatML with think blocks and Qwen's tool calls."""

from lmforge.data.templates.families.chatml import CHATML, HELPFUL, QWEN_TOOLS
from lmforge.data.templates.families.qwen3 import THINKING
from lmforge.data.templates.registry import register_template

register_template("mimo", **CHATML, **QWEN_TOOLS, **THINKING, default_system=HELPFUL,
                  description="MiMo-7B (RL / SFT): reasoning in ChatML.")
register_template("mimo_v2", **CHATML, **QWEN_TOOLS, **THINKING,
                  default_system="You are MiMo, a helpful AI assistant engineered by Xiaomi.",
                  description="MiMo-V2 (Flash).")
register_template("mimo_vl", **CHATML, **QWEN_TOOLS, **THINKING, mm_plugin="qwen2_vl",
                  default_system="You are MiMo, an AI assistant developed by Xiaomi.",
                  description="MiMo-VL-7B (RL / SFT).")
