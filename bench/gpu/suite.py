"""The GPU suite's driver: the plan's steps, each in its own process under its time box.

    python -m bench.gpu.suite [--dry-run] [--steps a,b] [--out DIR]     (bench/gpu/run.sh calls this)

Results go to OUT (default `$OUT`, else bench/.cache/gpu): gpu_suite.json, gpu_suite.md and gpu_suite.log,
rewritten after every step. A step that fails, times out or cannot start in the time left is recorded
with the reason and the suite goes on. `--dry-run` (CI, no GPU) checks the wheel list, the time boxes and
every GPU training config, then runs the steps marked for it on the CPU with a tiny model, with lmforge's
requirements that are neither on the GPU image nor carried made unimportable (bench/gpu/image_sim/).
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.gpu.plan import (
    DRY_RUN_BOX_S,
    MIN_START_S,
    PLAN,
    ROOT_DIR,
    STEP_NAMES,
    TOTAL_S,
    Context,
    Step,
    check_time_boxes,
    suite_environment,
    work_dir,
)
from bench.gpu.report import write_results
from bench.gpu.wheels import (
    WHEEL_DIR,
    absent_import_names,
    check_folder,
    check_pins,
    read_image_packages,
    read_wheel_list,
)

DRY_RUN_TOTAL_S = 150  # CI: the dry run's steps take well under a minute; this only stops a hang
NEEDS_MODELS = frozenset(STEP_NAMES) - {"env", "models", "pytest-gpu"}


def static_checks() -> list[str]:
    """What the dry run checks without running anything: the plan, its time boxes, the wheel list."""
    from bench.gpu.step import STEPS

    problems = check_time_boxes()
    if tuple(STEPS) != STEP_NAMES:
        problems.append("bench/gpu/step.py's STEPS and the plan's steps differ")
    wheels, image = read_wheel_list(), read_image_packages()
    problems += check_pins(wheels, image)
    if any(WHEEL_DIR.glob("*.whl")):
        problems += check_folder(wheels, image)
    return problems


def run_step(step: Step, ctx: Context, timeout: float, log: Path, absent: list[str]) -> dict[str, Any]:
    """The step's result, or why there is none (timed out, crashed)."""
    result_path = ctx.work / f"{step.name}.result.json"
    command = [sys.executable, "-m", "bench.gpu.step", step.name, "--work", str(ctx.work), "--result",
               str(result_path), *(["--dry-run"] if ctx.dry_run else [])]
    with log.open("a") as handle:
        handle.write(f"\n===== {step.name} (box {timeout:.0f} s) =====\n")
        handle.flush()
        process = subprocess.Popen(command, cwd=ROOT_DIR, env=suite_environment(ctx, absent), stdout=handle,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the step and every process it started (lmforge, torchrun)
            process.wait()
            return {"status": "timed out", "why": f"timed out after {timeout:.0f} s"}
    if result_path.is_file():
        return json.loads(result_path.read_text())
    tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:]
    return {"status": "failed", "why": f"exit code {code}: {tail[0][:200] if tail else 'no output'}"}


def skip_reason(step: Step, ctx: Context, selected: set[str] | None, results: dict[str, dict[str, Any]]) -> str:
    if selected is not None and step.name not in selected:
        return "not selected (--steps)"
    if ctx.dry_run and not step.dry_run:
        return "dry run: needs a CUDA GPU"
    # a timed-out env step goes on: a cold machine's first imports (no bytecode yet, the first CUDA load) can
    # outlast its box, and the next steps find them warm; an env step that failed means lmforge cannot run
    if step.name != "env" and results.get("env", {}).get("status") not in ("ok", "timed out"):
        return "the env step failed: lmforge cannot run here"
    if step.name in NEEDS_MODELS and results.get("models", {}).get("status") != "ok":
        return "needs the models step, which did not succeed"
    return ""


def run_suite(ctx: Context, out: Path, selected: set[str] | None, started: float) -> dict[str, Any]:
    absent = absent_import_names(read_wheel_list(), read_image_packages()) if ctx.dry_run else []
    total = DRY_RUN_TOTAL_S if ctx.dry_run else TOTAL_S
    deadline = started + total
    log = out / "gpu_suite.log"
    summary: dict[str, Any] = {"dry_run": ctx.dry_run, "date": datetime.date.today().isoformat(), "total_s": total,
                               "wall_s": 0.0, "work": str(ctx.work), "blocked_imports": absent, "steps": []}
    results: dict[str, dict[str, Any]] = {}
    if selected is not None:  # a rerun of some steps still needs the environment, models and data
        selected |= {"env", "models"}
    for step in PLAN:
        record: dict[str, Any] = {"name": step.name, "what": step.what, "box_s": step.box_s}
        remaining = deadline - time.time()
        reason = skip_reason(step, ctx, selected, results)
        if not reason and remaining < MIN_START_S:
            reason = f"suite budget spent ({max(remaining, 0):.0f} s left of {total} s)"
        if reason:
            record.update(status="skipped", why=reason)
        else:
            box = min(DRY_RUN_BOX_S if ctx.dry_run else step.box_s, remaining)
            began = time.time()
            record.update(run_step(step, ctx, box, log, absent))
            record["seconds"] = round(time.time() - began, 1)
        results[step.name] = record
        summary["steps"].append(record)
        summary["wall_s"] = round(time.time() - started, 1)
        write_results(out, summary)
        print(f"{step.name:16} {record['status']:10} {record.get('seconds', 0):6.1f} s  {record.get('why', '')}",
              flush=True)
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="CI: checks, then the small steps on the CPU")
    parser.add_argument("--steps", help=f"comma-separated subset of: {', '.join(STEP_NAMES)}")
    default_out = os.environ.get("OUT") or ROOT_DIR / "bench" / ".cache" / "gpu"
    parser.add_argument("--out", type=Path, default=Path(default_out))
    args = parser.parse_args()
    started = float(os.environ.get("LMFORGE_GPU_SUITE_START") or time.time())  # run.sh's start: install counted
    selected = set(args.steps.split(",")) if args.steps else None
    unknown = (selected or set()) - set(STEP_NAMES)
    if unknown:
        parser.error(f"unknown steps {', '.join(sorted(unknown))}; known: {', '.join(STEP_NAMES)}")
    args.out.mkdir(parents=True, exist_ok=True)
    problems = static_checks()
    for problem in problems:
        print(f"problem: {problem}", flush=True)
    ctx = Context(work_dir(args.dry_run), args.dry_run)
    try:
        summary = run_suite(ctx, args.out, selected, started)
    finally:
        shutil.rmtree(ctx.work, ignore_errors=True)  # gigabytes of models, in RAM on the GPU machine
    summary["problems"] = problems
    write_results(args.out, summary)
    failed = [s["name"] for s in summary["steps"] if s["status"] not in ("ok", "skipped")]
    print(f"results: {args.out / 'gpu_suite.md'}; wall {summary['wall_s']:.0f} s"
          + (f"; not ok: {', '.join(failed)}" if failed else ""))
    return 1 if problems or failed else 0


if __name__ == "__main__":
    sys.exit(main())
