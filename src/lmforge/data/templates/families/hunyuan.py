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
    description="Tencent Hy3 in LLaMA-Factory's form (Hy3's own template is `hy3_nothink`).",
)
# Hy3's own template with its default reasoning effort (`no_think`): the `:opensource` tokens, the effort marker
# after the system prompt, an empty think block opening every answer (with the header); no tool slots yet
register_template(
    "hy3_nothink",
    format_prefix="<｜hy_begin_of_sentence:opensource｜>",
    format_system="{{content}}<｜reasoning_mode:opensource｜>reasoning_effort:no_think",
    system_always=True,
    format_user="<｜hy_User:opensource｜>{{content}}",
    format_generation="<｜hy_Assistant:opensource｜><think:opensource></think:opensource>",
    format_assistant="{{content}}<｜hy_eos:opensource｜>",
    stop_words=("<｜hy_eos:opensource｜>",),
    replace_eos=True,
    reference="hunyuan-hy3",
    description="Tencent Hy3 (HYV3), reasoning effort `no_think`.",
)
