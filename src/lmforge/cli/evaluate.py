"""`lmforge eval CONFIG`: MMLU / CMMLU / C-Eval multiple-choice accuracy, as LLaMA-Factory's `eval` command."""

import typer
from rich.table import Table

from lmforge.cli.common import ConfigArg, OverridesArg, console, run_reporting_errors, show_notices


def eval_command(config: ConfigArg, overrides: OverridesArg = None) -> None:
    """Score the model on a multiple-choice benchmark (`task: mmlu_test`, `cmmlu_test`, `ceval_validation`):
    accuracy per subject and category, written to `save_dir` (results.json, results.log, scores.json)."""

    def body() -> None:
        from lmforge.config import load_config
        from lmforge.data.eval_tasks import read_task

        cfg = load_config(config, overrides)
        show_notices(cfg)
        subjects = read_task(cfg.evaluation)  # the task's files and save_dir: before any heavy library loads
        from lmforge.cli.quiet import quiet_libraries
        from lmforge.preflight import preflight

        preflight(cfg, "eval")  # the model and adapter references and the template, before the weights load
        quiet_libraries()
        from lmforge.infer.multiple_choice import SubjectResult, run_eval

        def done(result: SubjectResult) -> None:
            console.print(f"{result.subject.key}: {result.accuracy:.2f} ({len(result.predictions)} questions)",
                          highlight=False)

        result = run_eval(cfg, subjects, on_subject=done)
        table = Table("category", "accuracy")
        for name, score in result.category_scores().items():
            table.add_row(name, f"{score:.2f}")
        console.print(table)
        if cfg.evaluation.save_dir:
            console.print(f"results in {cfg.evaluation.save_dir}", highlight=False, markup=False, soft_wrap=True)

    run_reporting_errors(body)


def register(app: typer.Typer) -> None:
    app.command(name="eval")(eval_command)
