"""LLaVA-NeXT on Llama 3 and Mistral, LLaVA-NeXT-Video and Video-LLaVA: the language model's own turns, images
and videos from the multimodal plugin. (LLaVA-1.5 and LLaVA-NeXT on Vicuna are in classic.py; on Qwen and Yi in
chatml_vision.py.)"""

from lmforge.data.templates.families.llama import LLAMA3
from lmforge.data.templates.registry import register_template

VICUNA_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives "
                 "helpful, detailed, and polite answers to the user's questions.")
# Mistral-7B-Instruct v0.2 turns as the LLaVA-NeXT checkpoints use them: the system prompt opens the first question
LLAVA_MISTRAL = dict(
    format_prefix="{{bos_token}}",
    format_user="[INST] {{content}}[/INST]",
    format_assistant=" {{content}}{{eos_token}}",
    format_system="{{content}}\n\n",
    system_in_user=True,
    stop_words=("</s>",),
)
# Vicuna v1 turns without an end-of-turn token (training appends eos)
VIDEO_VICUNA = dict(format_system="{{content}} ", format_user="USER: {{content}} ", format_generation="ASSISTANT:",
                    format_assistant=" {{content}} ", efficient_eos=True, default_system=VICUNA_SYSTEM)

register_template("llava_next_llama3", **LLAMA3, mm_plugin="llava_next",
                  description="LLaVA-NeXT on Llama 3 (llama3-llava-next-8b).")
register_template("llava_next_mistral", **LLAVA_MISTRAL, mm_plugin="llava_next",
                  description="LLaVA-NeXT on Mistral-7B-Instruct (llava-v1.6-mistral-7b).")
register_template("llava_next_video", **VIDEO_VICUNA, mm_plugin="llava_next_video",
                  description="LLaVA-NeXT-Video 7B / 34B DPO on Vicuna.")
register_template("llava_next_video_mistral", **LLAVA_MISTRAL, mm_plugin="llava_next_video",
                  description="LLaVA-NeXT-Video on Mistral-7B-Instruct.")
register_template("video_llava", **VIDEO_VICUNA, mm_plugin="video_llava", description="Video-LLaVA-7B.")
