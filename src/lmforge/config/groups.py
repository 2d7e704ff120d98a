"""Typed configuration groups. Field names are LLaMA-Factory's, so its YAML files work as they are.

No torch or transformers import here: validating a config takes milliseconds.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lmforge.config.training import TrainingGroup


def _split_list(value: object) -> object:
    """LLaMA-Factory writes lists as comma-separated strings (`dataset: a,b`); accept both."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class ModelGroup(Group):
    model_name_or_path: str | None = Field(
        None, description="A local HF folder, `builtin:NAME`, or a hub id (needs a reachable hub).")
    adapter_name_or_path: list[str] | None = Field(
        None, description="Adapter folders, comma-separated; all are merged into the base model in order.")
    template: str | None = Field(
        None, description="Chat template name; defaults to the builtin model's template.")
    trust_remote_code: bool = Field(False, description="Allow model code from the checkpoint folder.")
    cache_dir: str | None = Field(None, description="Hub cache folder passed to from_pretrained.")
    model_revision: str = Field("main", description="Hub revision (branch, tag or commit).")
    use_fast_tokenizer: bool = Field(True, description="Use the fast (Rust) tokenizer.")
    infer_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Dtype for chat and export; auto is the training dtype or float32 on CPU.")

    _split = field_validator("adapter_name_or_path", mode="before")(_split_list)


class DataGroup(Group):
    dataset: list[str] | None = Field(
        None, description="Training datasets: names in dataset_dir/dataset_info.json or file paths.")
    dataset_dir: str = Field("data", description="Folder holding dataset_info.json and data files.")
    eval_dataset: list[str] | None = Field(None, description="Evaluation datasets, as `dataset`.")
    cutoff_len: int = Field(2048, gt=0, description="Maximum tokens per example after tokenization.")
    max_samples: int | None = Field(None, gt=0, description="Use at most this many rows of each dataset.")
    val_size: float = Field(0.0, ge=0, description="Held-out share (< 1) or row count (>= 1) for eval.")
    train_on_prompt: bool = Field(False, description="Also supervise prompt tokens.")
    mask_history: bool = Field(False, description="Supervise only the last assistant turn.")
    preprocessing_num_workers: int | None = Field(
        None, gt=0, description="Threads of the batched Rust tokenizer (default: all cores).")
    packing: bool | None = Field(
        None, description="Bin-pack examples into cutoff_len rows without cross-attention; default on for pt.")
    neat_packing: bool = Field(False, description="Alias of `packing: true` (lmforge packing is always neat).")
    packing_strategy: Literal["bfd", "ffd"] = Field(
        "bfd", description="Bin packing: best-fit decreasing (bfd) or first-fit decreasing (ffd).")
    mix_strategy: Literal["concat", "interleave_under", "interleave_over"] = Field(
        "concat", description="How several datasets combine: concatenated, or interleaved until the first "
                              "(under) or the last (over) is exhausted.")
    interleave_probs: list[float] | None = Field(
        None, description="Sampling probabilities of the datasets when interleaving, comma-separated.")
    streaming: bool = Field(False, description="Read and tokenize lazily while training; needs max_steps.")
    tokenized_path: str | None = Field(
        None, description="Load preprocessed data from this folder, or save it there when absent.")
    media_dir: str | None = Field(None, description="Folder media paths are relative to; default dataset_dir.")
    image_max_pixels: int = Field(768 * 768, gt=0, description="Larger images are scaled down to this many pixels.")
    image_min_pixels: int = Field(32 * 32, gt=0, description="Smaller images are scaled up to this many pixels.")
    video_max_pixels: int = Field(256 * 256, gt=0, description="Larger video frames are scaled down to this.")
    video_min_pixels: int = Field(16 * 16, gt=0, description="Smaller video frames are scaled up to this.")
    video_fps: float = Field(2.0, gt=0, description="Video frames sampled per second of video.")
    video_maxlen: int = Field(128, gt=0, description="At most this many frames sampled per video.")
    audio_sampling_rate: int = Field(16000, gt=0, description="Audio is resampled to this rate (Hz).")
    allow_remote_media: bool = Field(False, description="Fetch http(s) media URLs; otherwise they are an error.")
    on_bad_row: Literal["error", "skip"] = Field(
        "error", description="A malformed row stops the run (error) or is skipped and reported (skip).")
    overwrite_cache: bool = Field(
        False, description="Re-tokenize even when the content-addressed cache has this exact data.")

    _split = field_validator("dataset", "eval_dataset", "interleave_probs", mode="before")(_split_list)

    def packing_enabled(self, stage: str) -> bool:
        if self.neat_packing:
            return True
        return self.packing if self.packing is not None else stage == "pt"


class FinetuningGroup(Group):
    stage: Literal["pt", "sft", "rm", "ppo", "dpo", "kto"] = Field("sft", description="Training stage.")
    finetuning_type: Literal["lora", "full", "freeze"] = Field("lora", description="What is trained.")
    lora_rank: int = Field(8, gt=0, description="LoRA rank r.")
    lora_alpha: int | None = Field(None, gt=0, description="LoRA alpha; default 2 x lora_rank.")
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the LoRA path.")
    lora_target: list[str] = Field(
        default_factory=lambda: ["all"],
        description="Module names to adapt, comma-separated; `all` finds every linear layer.")
    plot_loss: bool = Field(True, description="Write training_loss.png (always on; accepted for LLaMA-Factory).")

    _split = field_validator("lora_target", mode="before")(_split_list)


class GenerationGroup(Group):
    do_sample: bool = Field(True, description="Sample; false means greedy decoding.")
    temperature: float = Field(0.95, gt=0, description="Sampling temperature.")
    top_p: float = Field(0.7, gt=0, le=1, description="Nucleus sampling mass.")
    top_k: int = Field(50, ge=0, description="Top-k sampling (0 disables it).")
    num_beams: int = Field(1, ge=1, description="Beam count for beam search.")
    max_new_tokens: int = Field(512, gt=0, description="Maximum tokens generated per answer.")
    repetition_penalty: float = Field(1.0, gt=0, description="Penalty for repeated tokens (1 = off).")
    default_system: str | None = Field(None, description="System prompt used when none is given.")


class ExportGroup(Group):
    export_dir: str | None = Field(None, description="Folder the merged model is written to.")
    export_size: int = Field(5, gt=0, description="Maximum shard size in GB.")
    export_legacy_format: bool = Field(
        False, description="Accepted for LLaMA-Factory configs; only false: exports are always safetensors.")
    export_tolerance: float | None = Field(
        None, gt=0, description="Max |logit| difference allowed by export verification; default by dtype.")


GROUPS: dict[str, type[BaseModel]] = {
    "model": ModelGroup,
    "data": DataGroup,
    "finetuning": FinetuningGroup,
    "generation": GenerationGroup,
    "training": TrainingGroup,
    "export": ExportGroup,
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
    source: str | None = None  # the YAML file the config came from, for messages

    def flat(self, *, only_set: bool = False) -> dict[str, object]:
        """Back to LLaMA-Factory's flat keys."""
        out: dict[str, object] = {}
        for name in GROUPS:
            out.update(getattr(self, name).model_dump(exclude_unset=only_set, mode="json"))
        return out
