"""Tencent Hunyuan: Hunyuan-7B / A13B Instruct (`<|extra_0|>` ends a question), the Hunyuan dense models and
Hunyuan-0.5B..7B small chat (`<｜hy_User｜>` tokens), and Hy3."""

from lmforge.data.templates.registry import register_template

register_template(
    "hunyuan",
    format_prefix="<|startoftext|>",
    format_system="{{content}}<|extra_4|>",
    format_user="{{content}}<|extra_0|>",
    format_assistant="{{content}}<|eos|>",
    stop_words=("<|eos|>",),
    description="Tencent Hunyuan-7B / A13B Instruct.",
)
register_template(
    "hunyuan_small",
    format_prefix="<｜hy_begin▁of▁sentence｜>",
    format_system="{{content}}<｜hy_place▁holder▁no▁3｜>",
    format_user="<｜hy_User｜>{{content}}<｜hy_place▁holder▁no▁8｜>",
    format_assistant="{{content}}<｜hy_place▁holder▁no▁2｜>",
    stop_words=("<｜hy_place▁holder▁no▁2｜>",),
    description="Hunyuan 0.5B / 1.8B / 4B / 7B Instruct.",
)
register_template(
    "hy_dense_1_8b",
    format_prefix="{{bos_token}}",
    format_system="{{content}}<｜hy_place▁holder▁no▁3｜>",
    format_user="<｜hy_User｜>{{content}}",
    format_generation="<｜hy_Assistant｜>",
    format_assistant="{{content}}",
    efficient_eos=True,
    stop_words=("<｜hy_place▁holder▁no▁2｜>",),
    description="Hunyuan dense 1.8B (no end-of-turn token in the format: training appends eos).",
)
register_template(
    "hy_dense_7b",
    format_prefix="{{bos_token}}",
    format_system="{{content}}<|extra_4|>",
    format_user="{{content}}<|extra_0|>",
    format_assistant="{{content}}",
    efficient_eos=True,
    stop_words=("<|eos|>",),
    description="Hunyuan dense 7B (no end-of-turn token in the format: training appends eos).",
)
register_template(
    "hy3",
    format_prefix="{{bos_token}}",
    format_system="{{content}}",
    format_user="<｜hy_User｜>{{content}}",
    format_generation="<｜hy_Assistant｜>",
    format_assistant="{{content}}<｜hy_eos｜>",
    thought_words=("<think>", "</think>"),
    thoughts_in_history=False,
    stop_words=("<｜hy_eos｜>",),
    replace_eos=True,
    description="Tencent Hy3 in LLaMA-Factory's form (the released Hy3 template, hunyuan-hy3.jinja in refdata, "
                "writes `:opensource` token variants and is not reproduced here).",
)
