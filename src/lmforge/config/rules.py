"""Cross-field rules: combinations of keys that are each valid alone but not together."""

from collections.abc import Callable

from lmforge.config.groups import LmforgeConfig
from lmforge.errors import ConfigError

SUPPORTED_STAGES = ("sft",)


def _stage_supported(cfg: LmforgeConfig) -> str | None:
    if cfg.finetuning.stage not in SUPPORTED_STAGES:
        return (f"`stage: {cfg.finetuning.stage}` is not supported by lmforge yet; "
                f"supported: {', '.join(SUPPORTED_STAGES)}")
    return None


def _finetuning_supported(cfg: LmforgeConfig) -> str | None:
    if cfg.finetuning.finetuning_type == "freeze":
        return "`finetuning_type: freeze` is not supported by lmforge yet; use `lora` or `full`"
    return None


def _adapter_needs_lora(cfg: LmforgeConfig) -> str | None:
    if cfg.model.adapter_name_or_path and cfg.finetuning.finetuning_type != "lora":
        return (f"`adapter_name_or_path` is only valid with `finetuning_type: lora` "
                f"(got `{cfg.finetuning.finetuning_type}`): merge the adapter first with `lmforge export`")
    return None


def _one_half_precision(cfg: LmforgeConfig) -> str | None:
    if cfg.training.bf16 and cfg.training.fp16:
        return "`bf16` and `fp16` cannot both be true: pick one"
    return None


def _one_eval_source(cfg: LmforgeConfig) -> str | None:
    if cfg.data.val_size and cfg.data.eval_dataset:
        return "`val_size` and `eval_dataset` cannot both be set: hold out a share or name an eval dataset"
    return None


def _val_size_is_share_or_count(cfg: LmforgeConfig) -> str | None:
    size = cfg.data.val_size
    if size >= 1 and size != int(size):
        return f"`val_size: {size}` must be a share below 1 or a whole row count"
    return None


def _safetensors_only(cfg: LmforgeConfig) -> str | None:
    if cfg.export.export_legacy_format:
        return "`export_legacy_format: true` (.bin files) is not supported: exports are safetensors"
    return None


def candidate_problems(*, n: int, method: str, do_sample: bool, num_beams: int, num_beam_groups: int) -> list[str]:
    """Candidate settings that do not fit together; shared by the config and per-request options."""
    problems: list[str] = []
    if method == "sample" and n > 1 and not do_sample and num_beams == 1:
        problems.append("n > 1 with greedy decoding gives n copies of one answer: set `do_sample: true` or "
                        "`candidate_method: beam`, `diverse_beam` or `diverse_sample`")
    if method in ("beam", "diverse_beam") and num_beams < n:
        problems.append(f"`candidate_method: {method}` returns the n best beams: `num_beams` ({num_beams}) "
                        f"must be at least the candidate count ({n})")
    if method == "diverse_beam" and (num_beam_groups < 2 or num_beams % num_beam_groups):
        problems.append(f"`candidate_method: diverse_beam` needs `num_beam_groups` >= 2 dividing `num_beams` "
                        f"(got num_beams {num_beams}, num_beam_groups {num_beam_groups})")
    if method == "diverse_sample" and not do_sample:
        problems.append("`candidate_method: diverse_sample` samples: set `do_sample: true`")
    return problems


def _candidates_fit(cfg: LmforgeConfig) -> str | None:
    gen = cfg.generation
    problems = candidate_problems(n=gen.num_candidates, method=gen.candidate_method, do_sample=gen.do_sample,
                                  num_beams=gen.num_beams, num_beam_groups=gen.num_beam_groups)
    return "; ".join(problems) or None


def _diverse_beam_on_transformers(cfg: LmforgeConfig) -> str | None:
    if cfg.generation.candidate_method == "diverse_beam" and cfg.generation.infer_backend == "vllm":
        return ("`candidate_method: diverse_beam` runs on the transformers backend only: set "
                "`infer_backend: huggingface`, or use `candidate_method: diverse_sample` with vLLM")
    return None


RULES: list[Callable[[LmforgeConfig], str | None]] = [
    _stage_supported,
    _finetuning_supported,
    _adapter_needs_lora,
    _one_half_precision,
    _one_eval_source,
    _val_size_is_share_or_count,
    _safetensors_only,
    _candidates_fit,
    _diverse_beam_on_transformers,
]


def check_rules(cfg: LmforgeConfig) -> None:
    where = cfg.source or "config"
    problems = [message for rule in RULES if (message := rule(cfg))]
    if problems:
        raise ConfigError(f"invalid configuration in {where}:\n  " + "\n  ".join(problems))
