"""Training stages: one `Stage` record per stage, one module per stage (pt, sft, rm, dpo, kto, grpo, rloo, ppo).

A stage says everything it means: the data it needs (`StageData`: rows, tokenizing, media, packing),
its trainer, its model head and reference model, its own config checks, and the metrics it plots.
The runner, preflight and `lmforge data` ask it; nothing else branches on a stage's name. Adding a
stage is adding a module here that calls `register_stage` (or registering one from any module
imported before the run, as tests/train/test_stage_registration.py does).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lmforge.config import LmforgeConfig
from lmforge.data.stage_data import StageData
from lmforge.errors import ConfigError
from lmforge.registry import Registry

# (cfg, model, tokenizer, prepared data, TrainingArguments kwargs, reference model or None) -> a Trainer
BuildTrainer = Callable[..., Any]
Check = Callable[[LmforgeConfig], str | None]  # a problem with the config for this stage, or None


def _never(cfg: LmforgeConfig) -> bool:
    return False


@dataclass(frozen=True)
class Stage:
    name: str
    data: StageData
    build_trainer: BuildTrainer | None  # None: lmforge prepares (and previews) its data but cannot train it yet
    reward_head: bool = False  # a scalar value head instead of the LM head; no generation config is saved
    needs_reference: Callable[[LmforgeConfig], bool] = _never  # a frozen reference model (`ref_model`, ...)
    predicts: bool = False  # `do_predict` can answer eval prompts with the trained model
    token_losses: bool = False  # takes the token-weighted losses (use_dft_loss, use_eaft_loss, use_asft_loss)
    routes_depths: bool = False  # takes `mixture_of_depths`: a causal-LM loss, one sequence per row unpacked
    checks: tuple[Check, ...] = ()  # the stage's own config rules, run by preflight
    plots: tuple[str, ...] = ("loss", "eval_loss")  # logged metrics drawn as output_dir/training_<metric>.png
    sequences_per_row: int = 1  # sequences per row whose activations backward keeps (chosen + rejected: 2)
    logs: tuple[str, ...] = ()  # logged metrics (or prefixes ending in "/") trainer_log.jsonl keeps besides the loss

    def problems(self, cfg: LmforgeConfig) -> list[str]:
        """What in `cfg` this stage cannot do: shared rules (prediction, packing) and its own checks."""
        problems = []
        if cfg.training.do_predict and not self.predicts:
            predicting = " or ".join(f"`stage: {stage.name}`" for stage in STAGES.entries() if stage.predicts)
            problems.append(f"`do_predict` answers prompts by generation, which needs {predicting} "
                            f"(got `{self.name}`)")
        if cfg.finetuning.token_loss() and not self.token_losses:
            takers = " or ".join(f"`stage: {stage.name}`" for stage in STAGES.entries() if stage.token_losses)
            problems.append(f"the DFT/EAFT/ASFT losses weight a causal-LM loss, which {takers} trains "
                            f"(got `{self.name}`): remove `use_*_loss`")
        if cfg.model.mixture_of_depths and not self.routes_depths:
            takers = ", ".join(stage.name for stage in STAGES.entries() if stage.routes_depths)
            problems.append(f"`mixture_of_depths` trains the causal-LM stages ({takers}), not `{self.name}`: "
                            "remove `mixture_of_depths`")
        elif cfg.model.mixture_of_depths and self.data.packing(cfg.data):
            problems.append("`mixture_of_depths` routes the tokens of one sequence per row: set `packing: false`")
        elif cfg.model.mixture_of_depths and cfg.training.do_predict:
            problems.append("`mixture_of_depths` models do not generate (the top-k routing needs the whole "
                            "sequence): remove `do_predict`")
        problems += self.data.problems(cfg.data, self.name)
        return problems + [message for check in self.checks if (message := check(cfg))]


STAGES: Registry[Stage] = Registry("stage", ConfigError, package=__name__)


def register_stage(stage: Stage) -> Stage:
    return STAGES.register(stage.name, stage)


def configured_stage(cfg: LmforgeConfig, *, train: bool = False) -> Stage:
    """The stage `cfg` names, checked against `cfg` (an unknown name gets a did-you-mean); `train`: it must
    have a trainer."""
    stage = STAGES.get(cfg.finetuning.stage)
    if train and stage.build_trainer is None:
        trainable = ", ".join(s.name for s in STAGES.entries() if s.build_trainer is not None)
        raise ConfigError(f"`stage: {stage.name}` cannot be trained by lmforge yet (its data can be previewed with "
                          f"`lmforge data preview`); trainable: {trainable}")
    if problems := stage.problems(cfg):
        raise ConfigError(f"invalid configuration in {cfg.source or 'config'}:\n  " + "\n  ".join(problems))
    return stage
