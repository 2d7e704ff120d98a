"""The `data` group: datasets, cutoff, packing, media and evaluation split (LLaMA-Factory's DataArguments names).

No torch or transformers import here: validating a config takes milliseconds.
"""

from typing import Literal

from pydantic import Field, field_validator

from lmforge.config.groups_base import Group, split_list


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
    enable_thinking: Literal["true", "false", "auto"] | None = Field(
        None, description="Reasoning templates: true trains a think block in every answer, false removes "
                          "thoughts, auto keeps them where the data has them (docs/templates.md). Default: the "
                          "template's (auto; false for *_nothink).")
    preserve_thinking: bool = Field(
        False, description="Reasoning templates: keep the thoughts of turns before the last user message "
                           "(Qwen3-style templates drop them by default).")
    preprocessing_num_workers: int | None = Field(
        None, gt=0, description="Threads of the batched Rust tokenizer (default: all cores).")
    packing: bool | None = Field(
        None, description="Bin-pack examples into cutoff_len rows without cross-attention; default on for pt.")
    neat_packing: bool = Field(False, description="Alias of `packing: true` (lmforge packing is always neat).")
    padding_free: bool | None = Field(
        None, description="pt/sft text batches: the batch's examples one after another in one row, each attending "
                          "only to itself (no padding computed; same loss). Default: on for CPU training where the "
                          "model's attention keeps examples apart; false pads every example to the batch's longest.")
    packing_strategy: Literal["bfd", "ffd"] = Field(
        "bfd", description="Bin packing: best-fit decreasing (bfd) or first-fit decreasing (ffd).")
    mix_strategy: Literal["concat", "interleave_under", "interleave_over", "interleave_once"] = Field(
        "concat", description="How several datasets combine: concatenated, or interleaved until the first "
                              "(under) or the last (over) is exhausted (repeating the shorter ones), or until "
                              "every row was used exactly once (once).")
    interleave_probs: list[float] | None = Field(
        None, description="Sampling probabilities of the datasets when interleaving, comma-separated.")
    streaming: bool = Field(False, description="Read and tokenize lazily while training; needs max_steps.")
    buffer_size: int = Field(
        16384, gt=0, description="Streaming: training rows are drawn at random from a buffer of this many "
                                 "(1 keeps the file order).")
    preprocessing_batch_size: int = Field(
        1000, gt=0, description="Streaming: rows read and tokenized per batched call.")
    ignore_pad_token_for_loss: bool = Field(
        True, description="pt/sft: padding is left out of the loss; false supervises it (labels padded with the "
                          "pad token, as LLaMA-Factory's `false` does).")
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
    use_audio_in_video: bool = Field(
        False, description="Qwen2.5-Omni / Qwen3-Omni: each video's sound is interleaved with its frames by time "
                           "(an `<audio>` right after its `<video>`, else the video file's own audio track).")
    media_cache: bool = Field(
        True, description="Keep each example's processed media on disk ($LMFORGE_HOME/media) for later epochs "
                          "and runs; false processes media anew every time.")
    media_cache_max_gb: float = Field(
        20.0, gt=0, description="Size cap of the processed-media cache (GB); the least recently used entries "
                                "are removed past it.")
    allow_remote_media: bool = Field(False, description="Fetch http(s) media URLs; otherwise they are an error.")
    eval_on_each_dataset: bool = Field(
        False, description="pt/sft: also evaluate each eval_dataset on its own (eval_NAME_loss next to eval_loss).")
    on_bad_row: Literal["error", "skip"] = Field(
        "error", description="A malformed row stops the run (error) or is skipped and reported (skip).")
    data_shared_file_system: bool = Field(
        False, description="Several nodes: the nodes share one file system (and lmforge's cache), so only the run's "
                           "first process prepares the data; otherwise the first process of each node does. The "
                           "other processes wait for it and read its result from the cache.")
    overwrite_cache: bool = Field(
        False, description="Re-tokenize even when the content-addressed cache has this exact data.")

    _split = field_validator("dataset", "eval_dataset", "interleave_probs", mode="before")(split_list)

    def packing_enabled(self, by_default: bool) -> bool:
        """`packing` (or `neat_packing`) when set, else the stage's default (`by_default`: pt packs)."""
        if self.neat_packing:
            return True
        return self.packing if self.packing is not None else by_default

    @field_validator("enable_thinking", mode="before")
    @classmethod
    def _thinking_words(cls, value: object) -> object:
        """YAML reads `true`/`false` as booleans; the policy is a word."""
        return str(value).lower() if isinstance(value, bool) else value
