"""Typed configuration groups. Field names are LLaMA-Factory's, so its YAML files work as they are.

No torch or transformers import here: validating a config takes milliseconds.
"""

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from lmforge.config.data import DataGroup
from lmforge.config.evaluation import EvaluationGroup
from lmforge.config.export import ExportGroup
from lmforge.config.generation import GenerationGroup
from lmforge.config.groups_base import Group, split_list
from lmforge.config.launch import LaunchGroup
from lmforge.config.optimizer import OptimizerGroup
from lmforge.config.profiler import ProfilerGroup
from lmforge.config.rl import RlGroup
from lmforge.config.swanlab import SwanlabGroup
from lmforge.config.training import TrainingGroup


def hub_from_env() -> str:
    """LLaMA-Factory picks the model hub with environment switches (ModelScope first when both are on)."""
    for variable, hub in (("USE_MODELSCOPE_HUB", "modelscope"), ("USE_OPENMIND_HUB", "openmind")):
        if os.environ.get(variable, "0").lower() in ("1", "true", "y"):
            return hub
    return "hf"


# LLaMA-Factory's `flash_attn` values as transformers' attn_implementation names.
FLASH_ATTN_MEANS = {"auto": "auto", "disabled": "eager", "sdpa": "sdpa", "fa2": "flash_attention_2"}


class ModelGroup(Group):
    model_name_or_path: str | None = Field(
        None, description="A local HF folder, `builtin:NAME`, or a hub id (needs a reachable hub).")
    adapter_name_or_path: list[str] | None = Field(
        None, description="Adapter folders, comma-separated; all are merged into the base model in order.")
    adapter_folder: str | None = Field(
        None, description="The subfolder of every `adapter_name_or_path` folder that holds its adapter (e.g. "
                          "`checkpoint-500` of each run), as peft's `subfolder`.")
    template: str | None = Field(
        None, description="Chat template name (`lmforge template list`), or `auto`: the tokenizer's own jinja "
                          "template. Default: the builtin model's template, else `auto`.")
    template_file: str | None = Field(
        None, description="A Python file of `register_template(...)` calls (`lmforge template derive --out FILE`), "
                          "loaded and checked before `template` is looked up: your own templates without editing "
                          "the installed package.")
    strict_template: bool = Field(
        False, description="Fail (instead of warn) when the template and the tokenizer's own chat template "
                           "render a probe conversation differently.")
    tool_format: str | None = Field(
        None, description="Tool-call format (default, qwen, hermes, llama3, mistral, glm4, xml); default: the "
                          "template's own.")
    trust_remote_code: bool = Field(False, description="Allow model code from the checkpoint folder.")
    cache_dir: str | None = Field(None, description="Hub cache folder passed to from_pretrained.")
    model_revision: str = Field("main", description="Hub revision (branch, tag or commit).")
    hf_hub_token: SecretStr | None = Field(
        None, description="Hugging Face token for gated/private models and `export_hub_model_id` (default: HF_TOKEN "
                          "or `hf auth login`); never printed.")
    ms_hub_token: SecretStr | None = Field(
        None, description="ModelScope token for private models with `model_hub: modelscope` (default: "
                          "MODELSCOPE_API_TOKEN or `modelscope login`); never printed.")
    om_hub_token: SecretStr | None = Field(
        None, description="openMind (Modelers) token for private models with `model_hub: openmind` (openmind_hub "
                          "reads no saved login or variable: this key is the only way); never printed.")
    use_fast_tokenizer: bool = Field(True, description="Use the fast (Rust) tokenizer.")
    infer_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Dtype for chat and export; auto is the training dtype or float32 on CPU.")
    model_class: Literal["auto", "AutoModelForCausalLM", "AutoModelForSeq2SeqLM", "AutoModelForImageTextToText",
                         "AutoModelForMultimodalLM"] = Field(
        "auto", description="The transformers auto class that loads the model; auto reads it from config.json.")
    model_hub: Literal["hf", "modelscope", "openmind"] = Field(
        default_factory=hub_from_env,
        description="Hub a hub id (and a registered model name without a local or builtin source) downloads from: "
                    "hf, modelscope or openmind (Modelers). Default: LLaMA-Factory's switches USE_MODELSCOPE_HUB=1, "
                    "USE_OPENMIND_HUB=1, else hf.")
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2"] = Field(
        "auto", description="Attention kernel; auto is sdpa where the model has it. flash_attention_2 needs CUDA.")
    flash_attn: Literal["auto", "disabled", "sdpa", "fa2"] | None = Field(
        None, description="LLaMA-Factory's name for attn_implementation (disabled = eager, fa2 = flash_attention_2).")
    rope_scaling: Literal["linear", "dynamic", "yarn", "llama3"] | None = Field(
        None, description="Stretch RoPE so cutoff_len fits when it exceeds the model's trained context.")
    low_cpu_mem_usage: bool = Field(
        True, description="Accepted from LLaMA-Factory configs: transformers 5 always loads the weights straight into "
                          "place and ignores this switch, so both values load the same way.")
    train_from_scratch: bool = Field(False, description="Random weights from the model's config, not its checkpoint.")
    add_tokens: list[str] | None = Field(
        None, description="Plain tokens to add to the vocabulary (comma-separated); embeddings are resized.")
    add_special_tokens: list[str] | None = Field(
        None, description="Special tokens to add (comma-separated, or a mapping of each token to what it means, "
                          "for `init_special_tokens: desc_init`); embeddings are resized.")
    special_token_descriptions: dict[str, str] | None = Field(
        None, description="What each new special token means (set by giving `add_special_tokens` as a mapping, or "
                          "LLaMA-Factory's `new_special_tokens_config` file); `desc_init` starts each token there.")
    init_special_tokens: Literal["noise_init", "desc_init", "desc_init_w_noise"] = Field(
        "noise_init", description="How new token embeddings start: noise_init, the mean of the existing rows; "
                                  "desc_init, the mean of the rows of the token's description; desc_init_w_noise, "
                                  "that plus Gaussian noise of std 1/sqrt(hidden size).")
    resize_vocab: bool = Field(
        False, description="Grow the embeddings to the tokenizer's size even without add_tokens (they always "
                           "grow when added tokens need it).")
    quantization_bit: Literal[4, 8] | None = Field(
        None, description="QLoRA: load the base weights in 4 or 8 bits (bitsandbytes; on a CUDA GPU, or the CPU from "
                          "bitsandbytes 0.47).")
    quantization_method: Literal["bnb", "bitsandbytes"] = Field(
        "bnb", description="Quantization backend for quantization_bit; bitsandbytes is the one supported.")
    quantization_device_map: Literal["auto"] | None = Field(
        None, description="Quantized models: `auto` spreads the weights over the GPUs (then CPU and disk) for "
                          "inference; default: all on the current GPU (the CPU without one).")
    offload_folder: str = Field("offload", description="Where `quantization_device_map: auto` offloads to disk.")
    double_quantization: bool = Field(True, description="4-bit: also quantize the quantization constants.")
    quantization_type: Literal["nf4", "fp4"] = Field("nf4", description="4-bit data type.")
    enable_liger_kernel: bool = Field(
        False, description="Use Liger's fused Triton kernels (CUDA only; ignored with a note elsewhere).")
    cpu_matmul: Literal["auto", "onednn", "torch"] = Field(
        "auto", description="Kernel for fp32 linear layers on the CPU: auto times oneDNN against torch's BLAS once "
                            "per process and uses oneDNN when it is 1.3x faster (~2.3x on an AMD EPYC, where MKL "
                            "skips AVX-512); torch keeps torch's own.")
    upcast_layernorm: bool = Field(
        False, description="Keep the normalisation weights (1-D `norm`/`ln` parameters) in float32 when the model "
                           "loads in half precision.")
    upcast_lmhead_output: bool = Field(
        False, description="Return the output head's logits in float32 when the head computes in half precision.")
    image_do_pan_and_scan: bool | None = Field(
        None, description="Gemma 3: also encode crops of wide or tall images (pan and scan); unset: the checkpoint's.")
    crop_to_patches: bool | None = Field(
        None, description="InternVL: also encode the image's tiles (crop to patches); unset: the checkpoint's.")
    split_special_tokens: bool = Field(
        False, description="Tokenize special-token text in the data (`<|im_end|>`) as plain text, not as the token.")
    print_param_status: bool = Field(
        False, description="Print every parameter's name, dtype, device and whether it trains, after the adapters.")
    moe_aux_loss_coef: float | None = Field(
        None, ge=0, description="Mixture-of-experts models: weight of the router's load-balancing loss, added to "
                                "the training loss (the router logits are returned for it).")
    use_unsloth: bool = Field(
        False, description="LLaMA-Factory's Unsloth switch: lmforge trains with its own speed path instead (fused "
                           "LoRA, packed attention, chunked loss; Liger kernels on CUDA); true prints a notice.")
    use_unsloth_gc: bool = Field(
        False, description="Unsloth's gradient checkpointing: lmforge uses transformers' (`gradient_checkpointing`, "
                           "`disable_gradient_checkpointing`); true prints a notice.")
    use_v1_kernels: bool = Field(
        False, description="LLaMA-Factory v1's kernels: lmforge's own speed path instead, as `use_unsloth`.")
    packed_attention: bool = Field(
        True, description="Packed rows (pt/sft) attend within each packed sequence instead of a masked whole row "
                          "(same numbers, less work); applies to the trained model where it uses sdpa.")
    shift_attn: bool = Field(
        False, description="LongLoRA's shift short attention (S²-Attn) while training: each row attends within 4 "
                           "groups, half of the heads' groups shifted by half a group; full attention in eval and "
                           "inference. Needs SDPA (docs/models.md).")
    mixture_of_depths: Literal["convert", "load"] | None = Field(
        None, description="Mixture-of-Depths: `convert` adds a top-k token router (12.5% of each sequence) to every "
                          "other decoder layer and trains it (full fine-tuning); `load` trains a checkpoint saved so "
                          "further. Training only (docs/models.md).")

    _split = field_validator("adapter_name_or_path", "add_tokens", "add_special_tokens", mode="before")(split_list)

    @model_validator(mode="before")
    @classmethod
    def _described_special_tokens(cls, data: Any) -> Any:
        """`add_special_tokens` as a mapping: the tokens, and their descriptions."""
        if isinstance(data, dict) and isinstance(data.get("add_special_tokens"), dict):
            described = data["add_special_tokens"]
            if data.get("special_token_descriptions") is not None:
                raise ValueError("`add_special_tokens` as a mapping already describes the tokens: "
                                 "remove `special_token_descriptions`")
            data = {**data, "add_special_tokens": list(described), "special_token_descriptions": described}
        return data

    def adapter_paths(self) -> list[str]:
        """The adapter folders to load: each `adapter_name_or_path`, inside `adapter_folder` when set."""
        return [str(Path(path) / self.adapter_folder) if self.adapter_folder else path
                for path in self.adapter_name_or_path or []]

    @property
    def attention(self) -> str:
        """The attention choice: `attn_implementation`, else `flash_attn` translated."""
        if self.attn_implementation != "auto" or self.flash_attn is None:
            return self.attn_implementation
        return FLASH_ATTN_MEANS[self.flash_attn]


class FinetuningGroup(Group):
    stage: str = Field(
        "sft", description="Training stage (builtin: pt, sft, rm, dpo, kto, grpo, rloo, ppo; `lmforge check` "
                           "validates the name against the stages registered in lmforge.train.stages).")
    finetuning_type: Literal["lora", "oft", "full", "freeze"] = Field(
        "lora", description="What is trained: LoRA or OFT adapters (peft), all weights, or some layers.")
    lora_rank: int = Field(8, gt=0, description="LoRA rank r.")
    lora_alpha: int | None = Field(None, gt=0, description="LoRA alpha; default 2 x lora_rank.")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA path.")
    lora_target: list[str] = Field(
        default_factory=lambda: ["all"],
        description="Module names to adapt, comma-separated; `all` finds every linear layer of the language model.")
    lora_task_type: Literal["CAUSAL_LM", "SEQ_2_SEQ_LM"] | None = Field(
        None, description="peft task type; inferred from the model, and checked against it when set.")
    use_dora: bool = Field(False, description="DoRA: weight-decomposed LoRA.")
    use_rslora: bool = Field(False, description="rsLoRA: scale by alpha / sqrt(rank) instead of alpha / rank.")
    fused_lora: bool = Field(
        True, description="Compute each plain LoRA linear layer as one matmul with W + s*B*A (exact up to float "
        "rounding, faster on CPU); off: peft's layers as they are. Not applied under DeepSpeed or FSDP.")
    pissa_init: bool = Field(False, description="PiSSA: start the adapter from the principal singular vectors.")
    pissa_iter: int = Field(16, ge=-1, description="Subspace iterations of PiSSA's fast SVD; -1 is the exact SVD.")
    pissa_convert: bool = Field(
        True, description="Save the PiSSA adapter as a plain LoRA that works on the original base model.")
    oft_rank: int = Field(
        0, ge=0, description="OFT: orthogonal blocks per adapted layer (set this or oft_block_size; 0: from the "
                             "block size).")
    oft_block_size: int = Field(
        32, ge=0, description="OFT: size of each orthogonal block; must divide the adapted layers' input size.")
    oft_target: list[str] = Field(
        default_factory=lambda: ["all"], description="OFT: modules to adapt, as `lora_target`.")
    module_dropout: float = Field(0.0, ge=0, lt=1, description="OFT: dropout of whole orthogonal blocks.")
    loraplus_lr_ratio: float | None = Field(
        None, gt=0, description="LoRA+: learning rate of the B matrices = learning_rate x this ratio.")
    loraplus_lr_embedding: float = Field(
        1e-6, gt=0, description="LoRA+: learning rate of LoRA layers on embeddings.")
    additional_target: list[str] | None = Field(
        None, description="Modules trained in full next to the adapters and saved with them (modules_to_save).")
    create_new_adapter: bool = Field(
        False, description="Merge every adapter in adapter_name_or_path and train a new one on top.")
    freeze_trainable_layers: int = Field(
        2, description="freeze: train the last N layers (N > 0) or the first -N layers (N < 0).")
    use_llama_pro: bool = Field(
        False, description="LLaMA-Pro: train only the blocks `lmforge expand` added (every (N/k)-th layer of N, k = "
                           "freeze_trainable_layers), with `freeze` or `lora`.")
    freeze_trainable_modules: list[str] = Field(
        default_factory=lambda: ["all"],
        description="freeze: modules trained inside those layers (e.g. mlp,self_attn); `all` trains them whole.")
    freeze_extra_modules: list[str] | None = Field(
        None, description="freeze: modules outside the layers to train too (e.g. embed_tokens,norm).")
    freeze_vision_tower: bool = Field(True, description="VLMs: keep the vision encoder frozen.")
    freeze_multi_modal_projector: bool = Field(True, description="VLMs: keep the vision-to-text projector frozen.")
    freeze_language_model: bool = Field(False, description="VLMs: keep the language model frozen.")
    pure_bf16: bool = Field(
        False, description="Train in bfloat16 throughout: weights (full fine-tuning too) and compute in bf16, "
                           "without mixed-precision autocast (half the memory of fp32 master weights).")
    plot_loss: bool = Field(True, description="Write training_loss.png (always on; accepted for LLaMA-Factory).")
    compute_accuracy: bool = Field(False, description="Report supervised-token accuracy at evaluation.")
    use_dft_loss: bool = Field(
        False, description="DFT: weight each answer token's loss by the model's probability of it (pt/sft).")
    use_eaft_loss: bool = Field(
        False, description="EAFT: weight each answer token's loss by the model's top-20 entropy / 3 (pt/sft).")
    eaft_alpha: float = Field(1.0, gt=0, description="EAFT: power of the entropy weight.")
    use_asft_loss: bool = Field(
        False, description="ASFT: the DFT loss plus asft_alpha x KL(reference || model) at answer tokens (pt/sft); "
                           "the reference is `ref_model`, the base with the adapter disabled, or a frozen copy.")
    asft_alpha: float = Field(0.1, ge=0, description="ASFT: weight of the KL term.")
    pref_beta: float = Field(0.1, gt=0, description="Preference strength beta (dpo, kto, orpo, simpo).")
    pref_ftx: float = Field(0.0, ge=0, description="Weight of an SFT loss on the chosen answers added to dpo.")
    pref_loss: Literal["sigmoid", "hinge", "ipo", "orpo", "simpo"] = Field(
        "sigmoid", description="DPO loss; orpo and simpo need no reference model.")
    dpo_label_smoothing: float = Field(
        0.0, ge=0, lt=0.5, description="cDPO: the chance a preference label is wrong; the sigmoid loss becomes "
                                       "(1-e) x -log sigmoid(margin) + e x -log sigmoid(-margin).")
    pref_bco_weight: float = Field(
        0.0, ge=0, description="Mix trl's BCO pair loss into DPO: (dpo + w x bco) / (1 + w).")
    ld_alpha: float | None = Field(
        None, ge=0, le=1, description="LD-DPO: weight of the answer tokens beyond the shorter answer's length "
                                      "(1: plain DPO, 0: only the shared length counts).")
    simpo_gamma: float = Field(0.5, ge=0, description="SimPO target reward margin gamma.")
    ref_model: str | None = Field(
        None, description="Reference model for dpo/kto; default: the base with adapters disabled (lora) or a "
                          "frozen copy of the model (full).")
    ref_model_adapters: list[str] | None = Field(
        None, description="Adapters merged, in order, into `ref_model` (comma-separated), as for the policy.")
    ref_model_quantization_bit: Literal[4, 8] | None = Field(
        None, description="Load `ref_model` in 4 or 8 bits (bitsandbytes, as `quantization_bit`).")
    kto_chosen_weight: float = Field(1.0, gt=0, description="KTO weight of desirable examples.")
    kto_rejected_weight: float = Field(1.0, gt=0, description="KTO weight of undesirable examples.")

    def token_loss(self) -> tuple[str, float] | None:
        """The token-weighted loss switched on (`dft`, `eaft`, `asft`) and its alpha, or None."""
        chosen = [(kind, alpha) for kind, alpha, on in (("dft", 1.0, self.use_dft_loss),
                                                        ("eaft", self.eaft_alpha, self.use_eaft_loss),
                                                        ("asft", self.asft_alpha, self.use_asft_loss)) if on]
        return chosen[0] if chosen else None

    _split = field_validator("lora_target", "oft_target", "additional_target", "ref_model_adapters",
                             "freeze_trainable_modules", "freeze_extra_modules", mode="before")(split_list)


GROUPS: dict[str, type[BaseModel]] = {
    "model": ModelGroup,
    "data": DataGroup,
    "finetuning": FinetuningGroup,
    "generation": GenerationGroup,
    "training": TrainingGroup,
    "export": ExportGroup,
    "optimizer": OptimizerGroup,
    "profiler": ProfilerGroup,
    "rl": RlGroup,
    "launch": LaunchGroup,
    "swanlab": SwanlabGroup,
    "evaluation": EvaluationGroup,
}


class LmforgeConfig(BaseModel):
    """The whole validated configuration, one attribute per group."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: ModelGroup
    data: DataGroup
    finetuning: FinetuningGroup
    generation: GenerationGroup
    training: TrainingGroup
    export: ExportGroup
    optimizer: OptimizerGroup
    profiler: ProfilerGroup
    rl: RlGroup
    launch: LaunchGroup
    swanlab: SwanlabGroup
    evaluation: EvaluationGroup
    source: str | None = None  # the YAML file the config came from, for messages
    notices: tuple[str, ...] = ()  # how the config was read (a LLaMA-Factory v1 config), shown once by the CLI

    def flat(self, *, only_set: bool = False) -> dict[str, object]:
        """Back to LLaMA-Factory's flat keys."""
        out: dict[str, object] = {}
        for name in GROUPS:
            out.update(getattr(self, name).model_dump(exclude_unset=only_set, mode="json"))
        return out
