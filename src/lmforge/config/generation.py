"""The generation group: how answers are decoded (chat, serving, prediction, rollouts)."""

import json
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lmforge.config.groups_base import Group


class GenerationGroup(Group):
    do_sample: bool = Field(True, description="Sample; false means greedy decoding.")
    temperature: float = Field(0.95, ge=0, description="Sampling temperature; 0 is greedy decoding (do_sample off), as "
                                                       "in OpenAI's API and `lmforge api`.")
    top_p: float = Field(0.7, gt=0, le=1, description="Nucleus sampling mass.")
    top_k: int = Field(50, ge=0, description="Top-k sampling (0 disables it).")
    num_beams: int = Field(1, ge=1, description="Beam count for beam search.")
    max_new_tokens: int = Field(
        512, description="Maximum tokens generated per answer; 0 or less: `max_length` limits prompt + answer instead "
                         "(LLaMA-Factory's rule).")
    max_length: int = Field(
        1024, gt=0, description="Most prompt + answer tokens, used only when max_new_tokens is 0 or less (a positive "
                                "max_new_tokens overrides it, as in LLaMA-Factory); an answer has at least one token.")
    repetition_penalty: float = Field(1.0, gt=0, description="Penalty for repeated tokens (1 = off).")
    default_system: str | None = Field(None, description="System prompt used when none is given.")
    length_penalty: float = Field(1.0, description="Beam score = log-probability / length ** length_penalty.")
    stop_strings: list[str] | None = Field(
        None, description="Answers end before the first of these strings (every backend honours them).")
    generation_seed: int | None = Field(
        None, description="Seed for sampling; a seeded request runs alone so its answer is reproducible.")
    num_candidates: int = Field(1, ge=1, description="Answers returned per prompt (`n`).")
    candidate_method: Literal["sample", "beam", "diverse_beam", "diverse_sample"] = Field(
        "sample", description="How several candidates are made: independent samples, the n best beams, "
                              "group beam search with a diversity penalty, or oversampling then dropping "
                              "near-duplicates.")
    num_beam_groups: int = Field(1, ge=1, description="Beam groups for `candidate_method: diverse_beam`.")
    diversity_penalty: float = Field(
        1.0, ge=0, description="diverse_beam: log-probability taken off a token per earlier group that chose it.")
    candidate_oversample: int = Field(
        3, ge=1, description="diverse_sample: draw n x this many answers before dropping near-duplicates.")
    candidate_max_similarity: float = Field(
        0.6, ge=0, le=1, description="diverse_sample: drop an answer this similar (0..1) to a better one.")
    candidate_similarity: Literal["ngram", "edit"] = Field(
        "ngram", description="diverse_sample similarity: word 2-gram overlap (Jaccard) or edit-distance ratio.")
    infer_backend: Literal["auto", "huggingface", "vllm"] = Field(
        "auto", description="Inference engine; auto is vLLM when installed and a CUDA GPU is present.")
    infer_batch_size: int = Field(16, ge=1, description="Most prompts the transformers backend decodes at once.")
    use_kv_cache: bool = Field(True, description="Decode with the key/value cache (false recomputes every step).")
    skip_special_tokens: bool = Field(
        True, description="Drop special tokens (other than tool-call markers) from answers; false keeps them.")
    vllm_maxlen: int = Field(4096, gt=0, description="vLLM: maximum prompt + answer tokens.")
    vllm_gpu_util: float = Field(0.7, gt=0, le=1, description="vLLM: share of GPU memory it may take.")
    vllm_enforce_eager: bool = Field(False, description="vLLM: disable CUDA graphs.")
    vllm_max_lora_rank: int = Field(32, gt=0, description="vLLM: the largest LoRA rank it serves unmerged.")
    vllm_config: dict[str, Any] | None = Field(
        None, description="vLLM: more `vllm.LLM` engine arguments (a mapping, or its JSON text), over lmforge's.")

    def answer_limit(self) -> int:
        """The most tokens an answer may have: `max_new_tokens`, else (0 or less) `max_length`."""
        return self.max_new_tokens if self.max_new_tokens > 0 else self.max_length

    @model_validator(mode="before")
    @classmethod
    def _zero_temperature_is_greedy(cls, values: Any) -> Any:
        # a temperature of 0 divides the logits by zero; everyone who writes it means the most likely token
        if isinstance(values, dict) and values.get("temperature") == 0:
            return {**values, "do_sample": False}
        return values

    @field_validator("vllm_config", mode="before")
    @classmethod
    def _json_mapping(cls, value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value  # LLaMA-Factory passes it as JSON text

    @field_validator("stop_strings", mode="before")
    @classmethod
    def _one_stop_string(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value  # commas may be part of a stop string: no split
