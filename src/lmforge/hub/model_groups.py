"""What a model group is, and the builtin groups: display names, sources, default template, modality.
Data only: hub/registry.py registers each group (and anyone may add one with `register_model_group`).

Template names are LLaMA-Factory's, so its users find the ones they know.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelGroup:
    """Display names with their sources (`hf`, `modelscope`, `local`, `builtin`); all share `template` and
    `multimodal`. `group` defaults to each name's first dash-separated word."""

    models: dict[str, dict[str, str]]
    template: str | None = None
    multimodal: bool = False
    group: str | None = None
    description: str = ""


def _hub(hf: str, modelscope: str | None = None) -> dict[str, str]:
    return {"hf": hf, **({"modelscope": modelscope} if modelscope else {})}



GROUPS = [
    ModelGroup(
        group="builtin",
        models={
            "Tiny-Random-Llama": {"builtin": "tiny-llama"},
            "Tiny-Random-T5": {"builtin": "tiny-t5"},
        },
        template=None,  # each builtin carries its own template (hub/builtin.py)
        description="tiny random models built locally, for tests and experiments",
    ),

    ModelGroup(
        group="SmolLM2",
        models={
            "SmolLM2-135M-Instruct": {"builtin": "smollm2-135m-instruct", "hf": "HuggingFaceTB/SmolLM2-135M-Instruct"},
            "SmolLM2-360M-Instruct": _hub("HuggingFaceTB/SmolLM2-360M-Instruct"),
            "SmolLM2-1.7B-Instruct": _hub("HuggingFaceTB/SmolLM2-1.7B-Instruct"),
        },
        template="smollm2",
    ),

    ModelGroup(
        group="Qwen2.5",
        models={f"Qwen2.5-{size}-Instruct": _hub(f"Qwen/Qwen2.5-{size}-Instruct", f"Qwen/Qwen2.5-{size}-Instruct")
                for size in ("0.5B", "1.5B", "3B", "7B", "14B", "32B", "72B")},
        template="qwen",
    ),

    ModelGroup(
        group="Qwen2",
        models={f"Qwen2-{size}-Instruct": _hub(f"Qwen/Qwen2-{size}-Instruct", f"Qwen/Qwen2-{size}-Instruct")
                for size in ("0.5B", "1.5B", "7B", "72B")},
        template="qwen2",
    ),

    ModelGroup(
        group="Qwen2-VL",
        models={
            **{f"Qwen2-VL-{size}-Instruct": _hub(f"Qwen/Qwen2-VL-{size}-Instruct", f"Qwen/Qwen2-VL-{size}-Instruct")
               for size in ("2B", "7B", "72B")},
            **{f"Qwen2.5-VL-{size}-Instruct": _hub(f"Qwen/Qwen2.5-VL-{size}-Instruct",
                                                   f"Qwen/Qwen2.5-VL-{size}-Instruct")
               for size in ("3B", "7B", "32B", "72B")},
        },
        template="qwen2_vl",
        multimodal=True,
    ),

    ModelGroup(
        group="Llama-3",
        models={
            "Llama-3-8B-Instruct": _hub("meta-llama/Meta-Llama-3-8B-Instruct", "LLM-Research/Meta-Llama-3-8B-Instruct"),
            "Llama-3.1-8B-Instruct": _hub("meta-llama/Llama-3.1-8B-Instruct",
                                          "LLM-Research/Meta-Llama-3.1-8B-Instruct"),
            "Llama-3.2-1B-Instruct": _hub("meta-llama/Llama-3.2-1B-Instruct", "LLM-Research/Llama-3.2-1B-Instruct"),
            "Llama-3.2-3B-Instruct": _hub("meta-llama/Llama-3.2-3B-Instruct", "LLM-Research/Llama-3.2-3B-Instruct"),
        },
        template="llama3",
    ),

    # Gemma 3: the 1B checkpoint is text-only (Gemma3ForCausalLM); 4B and up are vision-language models
    # (Gemma3ForConditionalGeneration), so the family is two groups with different templates.
    ModelGroup(
        group="Gemma-3",
        models={"Gemma-3-1B-Instruct": _hub("google/gemma-3-1b-it", "LLM-Research/gemma-3-1b-it")},
        template="gemma",
    ),
    ModelGroup(
        group="Gemma-3",
        models={f"Gemma-3-{size}-Instruct": _hub(f"google/gemma-3-{size.lower()}-it",
                                                 f"LLM-Research/gemma-3-{size.lower()}-it")
                for size in ("4B", "12B", "27B")},
        template="gemma3",
        multimodal=True,
    ),

    ModelGroup(
        group="ChatGLM3",
        models={"ChatGLM3-6B-Chat": _hub("THUDM/chatglm3-6b", "ZhipuAI/chatglm3-6b")},
        template="chatglm3",
        description="decoder-only despite its ChatGLMForConditionalGeneration class name; needs trust_remote_code",
    ),

    ModelGroup(
        group="Flan-T5",
        models={f"Flan-T5-{size}": _hub(f"google/flan-t5-{size.lower()}") for size in ("Small", "Base", "Large")},
        template="seq2seq",
        description="encoder-decoder; LoRA uses the SEQ_2_SEQ_LM task type",
    ),
]
