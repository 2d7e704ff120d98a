"""Cross-field rules of the generation keys: candidates per prompt and their method, the backend they run on,
a `generation_config` file. `candidate_problems` is shared with the per-request options of `lmforge api`."""

from pathlib import Path

from lmforge.config.groups import LmforgeConfig


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


def candidates_fit(cfg: LmforgeConfig) -> str | None:
    gen = cfg.generation
    problems = candidate_problems(n=gen.num_candidates, method=gen.candidate_method, do_sample=gen.do_sample,
                                  num_beams=gen.num_beams, num_beam_groups=gen.num_beam_groups)
    return "; ".join(problems) or None


def diverse_beam_on_transformers(cfg: LmforgeConfig) -> str | None:
    if cfg.generation.candidate_method == "diverse_beam" and cfg.generation.infer_backend == "vllm":
        return ("`candidate_method: diverse_beam` runs on the transformers backend only: set "
                "`infer_backend: huggingface`, or use `candidate_method: diverse_sample` with vLLM")
    return None


def generation_config_file(cfg: LmforgeConfig) -> str | None:
    source = cfg.training.generation_config
    if source is None:
        return None
    path = Path(source)
    if not (path.is_file() or (path / "generation_config.json").is_file()):
        return (f"`generation_config: {source}`: no such file, nor a folder holding generation_config.json "
                "(save one with `GenerationConfig.save_pretrained`)")
    if cfg.generation.infer_backend == "vllm":
        return "`generation_config` sets up transformers' `generate`: set `infer_backend: huggingface`"
    return None
