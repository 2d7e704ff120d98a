"""The evaluation group: LLaMA-Factory's `EvaluationArguments`, read by `lmforge eval` (MMLU / CMMLU / C-Eval
multiple-choice accuracy). `seed` is the training group's, as LLaMA-Factory's eval seed set the same RNGs."""

from typing import Literal

from pydantic import Field, field_validator

from lmforge.config.groups_base import Group

EVAL_SPLITS = ("train", "validation", "test")  # a task's splits; `train` is the dev set the shots come from


class EvaluationGroup(Group):
    task: str | None = Field(
        None, description="`lmforge eval`: the benchmark and split, `NAME_SPLIT` (mmlu_test, cmmlu_test, "
                          "ceval_validation): the folder task_dir/NAME, split train, validation or test.")
    task_dir: str = Field(
        "evaluation", description="`lmforge eval`: the folder holding one folder per benchmark (mapping.json and "
                                  "the CSVs, or LLaMA-Factory's NAME.zip of them).")
    batch_size: int = Field(4, gt=0, description="`lmforge eval`: questions per forward pass.")
    lang: Literal["en", "zh"] = Field(
        "en", description="`lmforge eval`: the language of the question prompt (zh for CMMLU and C-Eval).")
    n_shot: int = Field(
        5, ge=0, description="`lmforge eval`: solved questions from the dev set shown before each question.")
    save_dir: str | None = Field(
        None, description="`lmforge eval`: a new folder for results.json (each answer), results.log (the "
                          "category scores) and scores.json; an existing folder is refused.")
    download_mode: Literal["reuse_dataset_if_exists", "reuse_cache_if_exists", "force_redownload"] = Field(
        "reuse_dataset_if_exists",
        description="Accepted for LLaMA-Factory configs and without effect: `lmforge eval` reads the task's CSV "
                    "files afresh every run and keeps no cached copy, so every mode reads the same files.")

    @field_validator("task")
    @classmethod
    def _task_name(cls, task: str | None) -> str | None:
        if task is not None:
            name, _, split = task.rpartition("_")
            if not name or split not in EVAL_SPLITS:
                raise ValueError(f"must be NAME_SPLIT with SPLIT one of {', '.join(EVAL_SPLITS)} (mmlu_test, "
                                 "cmmlu_test, ceval_validation)")
        return task

    def task_parts(self) -> tuple[str, str]:
        """(the benchmark's folder name, the split) of `task`."""
        name, _, split = (self.task or "").rpartition("_")
        return name, split
