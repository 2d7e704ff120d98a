"""Vision-language models whose text turns are ChatML (InternVL transformers-native, Intern-S1, MiniCPM-V 4.5 /
4.6, MiniCPM-o, Keye-VL, MOSS-VL, LLaVA-NeXT on Qwen and Yi) or close to it (SmolVLM's `User:` turns after bos).
Media placeholders are the multimodal plugin's (`mm_plugin`); a plugin lmforge does not have yet fails with that
name when media come."""

from lmforge.data.templates.families.chatml import CHATML, HELPFUL, QWEN_TOOLS
from lmforge.data.templates.families.qwen3 import THINKING
from lmforge.data.templates.registry import register_template

register_template("intern_vl_hf", **CHATML, mm_plugin="intern_vl", reference="internvl3-hf",
                  description="InternVL 2.5 / 3 transformers-native checkpoints (`-hf`): ChatML, no default system.")
register_template("intern_s1", **{**CHATML, "replace_eos": False}, format_prefix="{{bos_token}}", mm_plugin="intern_vl",
                  description="Intern-S1 / Intern-S1-mini (ChatML after bos).")
register_template("minicpm_v_4_6", **{**CHATML, "replace_eos": False}, default_system=HELPFUL,
                  mm_plugin="minicpm_v_4_6", description="MiniCPM-V 4.6.")
register_template("minicpm_o", **{**CHATML, "replace_eos": False}, mm_plugin="minicpm_v", remote_code=True,
                  default_system="You are a helpful assistant. You can accept audio and text input and output voice "
                                 "and text.",
                  description="MiniCPM-o 2.6 (image, video and audio in, ChatML turns).")
register_template("keye_vl", **CHATML, **QWEN_TOOLS, **THINKING, mm_plugin="qwen2_vl",
                  description="Kwai Keye-VL (Qwen-style ChatML, thinking, Qwen tool calls).")
register_template("moss_vl", **CHATML, **QWEN_TOOLS, mm_plugin="moss_vl", remote_code=True,
                  description="MOSS-VL (Qwen-style ChatML and tool calls).")
register_template("llava_next_qwen", **CHATML, **QWEN_TOOLS, default_system=HELPFUL, mm_plugin="llava_next",
                  description="LLaVA-NeXT on Qwen (ChatML with Qwen's tool calls).")
register_template("llava_next_yi", **{**CHATML, "replace_eos": False}, mm_plugin="llava_next",
                  description="LLaVA-NeXT on Yi-34B (ChatML).")
register_template("llava_next_video_yi", **{**CHATML, "replace_eos": False}, mm_plugin="llava_next_video",
                  description="LLaVA-NeXT-Video on Yi-34B (ChatML).")
register_template("minicpm_v_4_5", **CHATML, **QWEN_TOOLS, **THINKING, empty_thought_on_final=True,
                  default_thinking="false", mm_plugin="minicpm_v", remote_code=True, reference="minicpm-v-4.5",
                  description="MiniCPM-V 4.5: Qwen3's turns and thinking, off by default.")
register_template("smolvlm", format_prefix="{{bos_token}}", format_system="System: {{content}}<end_of_utterance>\n",
                  format_user="User: {{content}}<end_of_utterance>\n", format_generation="Assistant:",
                  format_assistant=" {{content}}<end_of_utterance>", assistant_suffix="\n",
                  stop_words=("<end_of_utterance>",), mm_plugin="smolvlm", reference="smolvlm2",
                  aliases=("smolvlm2",), description="SmolVLM / SmolVLM2 (`User:` / `Assistant:` turns after bos).")
