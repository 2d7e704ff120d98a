"""Qwen2-VL and Qwen2.5-VL Instruct: ChatML with Qwen2's default system, for vision-language checkpoints.

Text renders exactly as `qwen2`; the template is marked multimodal so it is only used with VLMs.
"""

from lmforge.data.templates.families.chatml import CHATML
from lmforge.data.templates.registry import register_template

register_template(
    "qwen2_vl",
    **CHATML,
    default_system="You are a helpful assistant.",
    reference="qwen2-vl",
    multimodal=True,
    description="Qwen2-VL / Qwen2.5-VL Instruct (multimodal).",
)
