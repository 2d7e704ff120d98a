"""Plain-text formats: alpaca, vicuna, zephyr, falcon, llava, baichuan2, default, empty, ..."""

from lmforge.data.templates.registry import register_template

register_template("empty", format_user="{{content}}", format_assistant="{{content}}", format_system="{{content}}",
                  efficient_eos=True, description="No markup at all (pre-training style); eos ends answers.")
register_template("default", format_system="System: {{content}}\n", format_user="Human: {{content}}\n",
                  format_generation="Assistant:", format_assistant=" {{content}}{{eos_token}}",
                  assistant_suffix="\n", format_observation="Observation: {{content}}\n",
                  description="Generic Human/Assistant format with ReAct tool calls, for base models.")
register_template(
    "alpaca",
    format_system="{{content}}\n\n",
    format_user="### Instruction:\n{{content}}\n\n",
    format_generation="### Response:\n",
    format_assistant="{{content}}{{eos_token}}",
    assistant_suffix="\n\n",
    default_system="Below is an instruction that describes a task. Write a response that appropriately "
                   "completes the request.",
    description="Stanford Alpaca instruction format.",
)
register_template("vicuna", format_system="{{content}}\n\n", format_user="USER: {{content}}\n",
                  format_generation="ASSISTANT:", format_assistant=" {{content}}</s>", assistant_suffix="\n",
                  stop_words=("</s>",), reference="vicuna-v1.1", description="Vicuna v1.1 (no default system).")
register_template("zephyr", format_system="<|system|>\n{{content}}{{eos_token}}\n",
                  format_user="<|user|>\n{{content}}{{eos_token}}\n", format_generation="<|assistant|>\n",
                  format_assistant="{{content}}{{eos_token}}", assistant_suffix="\n", stop_words=("</s>",),
                  reference="zephyr", aliases=("tinyllama",), description="Zephyr-7B-beta, TinyLlama-1.1B-Chat.")
register_template("llava", format_system="{{content}} ", format_user="USER: {{content}} ",
                  format_generation="ASSISTANT:", format_assistant=" {{content}} ", efficient_eos=True,
                  mm_plugin="llava", reference="llava",
                  description="LLaVA-1.5 (llava-hf); training appends eos to each answer.")
register_template("llava_next", format_system="{{content}} ", format_user="USER: {{content}} ",
                  format_generation="ASSISTANT:", format_assistant=" {{content}} ", efficient_eos=True,
                  mm_plugin="llava_next", family_references=("llava",),
                  description="LLaVA-NeXT (Vicuna-based checkpoints).")
register_template("baichuan2", format_system="{{content}}", format_user="<reserved_106>{{content}}",
                  format_generation="<reserved_107>", format_assistant="{{content}}", strip_content=False,
                  efficient_eos=True, reference="baichuan2-chat",
                  description="Baichuan2 Chat (user/assistant marker tokens, no end of turn).")
register_template("falcon", format_system="{{content}}\n", format_user="User: {{content}}\n",
                  format_generation="Falcon:", format_assistant=" {{content}}\n", efficient_eos=True,
                  description="Falcon-7B/40B-instruct (ships no template; the widely used User/Falcon form).")
register_template("openchat", format_prefix="{{bos_token}}",
                  format_user="GPT4 Correct User: {{content}}<|end_of_turn|>",
                  format_generation="GPT4 Correct Assistant:",
                  format_assistant=" {{content}}<|end_of_turn|>", stop_words=("<|end_of_turn|>",),
                  description="OpenChat 3.5 / 3.6.")
register_template("solar", format_system="### System:\n{{content}}\n\n", format_user="### User:\n{{content}}\n\n",
                  format_generation="### Assistant:\n", format_assistant="{{content}}{{eos_token}}",
                  assistant_suffix="\n\n", description="SOLAR-10.7B-Instruct.")
register_template("starchat", format_system="<|system|>\n{{content}}<|end|>\n",
                  format_user="<|user|>\n{{content}}<|end|>\n",
                  format_generation="<|assistant|>\n", format_assistant="{{content}}<|end|>", assistant_suffix="\n",
                  stop_words=("<|end|>",), description="StarChat-beta / StarChat2.")
register_template("yi_vl", format_system="{{content}}\n\n", format_user="### Human: {{content}}\n",
                  format_generation="### Assistant:", format_assistant=" {{content}}\n", efficient_eos=True,
                  default_system="This is a chat between an inquisitive human and an AI assistant. Assume the role "
                                 "of the AI assistant. Read all the images carefully, and respond to the human's "
                                 "questions with informative, helpful, detailed and polite answers. 这是一个好奇的人类"
                                 "和一个人工智能助手之间的对话。假设你扮演这个AI助手的角色。仔细阅读所有的图像，并对人类的"
                                 "问题做出信息丰富、有帮助、详细的和礼貌的回答。",
                  stop_words=("###",), mm_plugin="llava", description="Yi-VL 6B / 34B.")
register_template("breeze", format_prefix="{{bos_token}}", format_system="{{content}}",
                  format_user="[INST] {{content}} [/INST]", format_assistant=" {{content}}", efficient_eos=True,
                  thought_prefill=" ",  # the answer owns the space before it; a generation prompt ends with it
                  description="MediaTek Breeze-7B Instruct ([INST] turns, no end-of-turn token).")
register_template("fewshot", format_system="{{content}}", format_user="{{content}}", format_assistant="{{content}}",
                  assistant_suffix="\n\n", efficient_eos=True,
                  description="Few-shot prompting of base models: question and answer back to back, a blank line "
                              "after each answer.")
register_template("index", format_system="<unk>{{content}}", format_user="reserved_0{{content}}reserved_1",
                  format_assistant="{{content}}", efficient_eos=True, description="Bilibili Index-1.9B Chat.")
register_template("xuanyuan", format_system="{{content}}", format_user="Human: {{content}} ",
                  format_generation="Assistant:", format_assistant="{{content}}{{eos_token}}",
                  default_system="以下是用户和人工智能助手之间的对话。用户以Human开头，人工智能助手以Assistant开头，会对人类提出的问题给出"
                                 "有帮助、高质量、详细和礼貌的回答，并且总是拒绝参与与不道德、不安全、有争议、政治敏感等相关的话题、问题和指"
                                 "示。\n",
                  description="Du Xiaoman XuanYuan (Human/Assistant turns, its Chinese default system prompt).")
register_template("yuan", format_user="{{content}}<sep>", format_assistant="{{content}}<eod>", assistant_suffix="\n",
                  stop_words=("<eod>",), description="IEIT Yuan 2.0.")
register_template("openchat3.6", format_prefix="{{bos_token}}",
                  format_user="<|start_header_id|>GPT4 Correct User<|end_header_id|>\n\n{{content}}<|eot_id|>",
                  format_generation="<|start_header_id|>GPT4 Correct Assistant<|end_header_id|>\n\n",
                  format_assistant="{{content}}<|eot_id|>", stop_words=("<|eot_id|>",), aliases=("openchat-3.6",),
                  description="OpenChat 3.6 (Llama 3 header tokens with OpenChat's role names).")
