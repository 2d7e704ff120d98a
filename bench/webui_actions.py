"""The web UI as a user drives it, in headless Chromium: this tree vs lmforge from another source tree.

Each run starts the UI (the tree's own `build_app`, the tiny builtin model) in a fresh process and times, from
the click to what the user waits for:
- page: the page loaded and its form drawn;
- model: a model picked from the dropdown, until its registered template is filled in;
- save: Save config, until the page says saved;
- load + switch: a field edited, Load config, until the field shows the saved value again, then the language
  switched to Chinese, until the Train tab is renamed (a page still busy with the load answers late);
- idle requests: the requests an idle page makes in 10 s (a polling tab redraws the page on each).
Trees alternate run by run (baseline first); the median of the runs is reported. Needs Debian's chromium and
playwright (the dev extra), as the browser tests do.

Usage:
    git worktree add --detach /tmp/base REV
    python bench/webui_actions.py --baseline-src /tmp/base/src [--runs 3] [--record]
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import ROOT, append_benchmark_row, machine, today, versions

SECTION = "Web UI actions in a browser"
TABLE_HEADER = ("| date | this tree / baseline | page s | model s | save s | load + switch s | idle requests / 10 s | "
                "machine, load | versions | command |\n|---|---|---|---|---|---|---|---|---|---|")
STEPS = ("page", "model", "save", "load + switch", "idle requests")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def drive(work: Path) -> dict[str, float]:
    """One run against the UI of the lmforge first on sys.path (the child process's)."""
    from playwright.sync_api import expect, sync_playwright

    from lmforge.serve.webui.app import build_app

    expect.set_options(timeout=300_000)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = build_app({"dataset": ["identity"], "max_steps": 3}, workdir=work)
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, ssr_mode=False, quiet=True)
    times: dict[str, float] = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(300_000)

            def choose(elem_id: str, option: str) -> None:
                page.locator(f"#{elem_id} input").click()
                page.get_by_role("option", name=option, exact=True).click()
                page.keyboard.press("Escape")

            def fill(elem_id: str, value: object) -> None:
                box = page.locator(f"#{elem_id} input, #{elem_id} textarea").first
                box.fill(str(value))
                box.press("Tab")

            start = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}")
            page.locator("#yaml_preview").wait_for()
            times["page"] = time.perf_counter() - start
            start = time.perf_counter()
            choose("field_model_name_or_path", "Tiny-Random-Llama")
            expect(page.locator("#field_template input")).to_have_value("chatml")
            times["model"] = time.perf_counter() - start
            fill("config_path", work / "mine.yaml")
            start = time.perf_counter()
            page.locator("#save_config").dispatch_event("click")
            expect(page.locator("#config_file_status")).to_contain_text("saved")
            times["save"] = time.perf_counter() - start
            saved_rank = page.locator("#field_lora_rank input").input_value()
            fill("field_lora_rank", int(saved_rank) * 2)
            start = time.perf_counter()
            page.locator("#load_config").dispatch_event("click")
            expect(page.locator("#field_lora_rank input")).to_have_value(saved_rank)
            choose("language", "zh")
            page.get_by_role("tab", name="训练").wait_for()
            times["load + switch"] = time.perf_counter() - start
            page.wait_for_timeout(3_000)  # the switch's own events answered
            made: list[str] = []
            page.on("request", lambda request: made.append(request.url))
            page.wait_for_timeout(10_000)
            times["idle requests"] = len(made)
            browser.close()
    finally:
        app.close()
    return times


def revision(folder: Path) -> str:
    return subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip() or str(folder)


def run_tree(src: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "times.json"
        env = {**os.environ, "PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1"}
        subprocess.run([sys.executable, __file__, "--child", str(src), "--out", str(out)], env=env, check=True,
                       cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-src", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--record", action="store_true", help="append the figures to BENCHMARKS.md")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(args.child))
        args.out.write_text(json.dumps(drive(Path.cwd())))
        return
    if args.baseline_src is None:
        sys.exit("--baseline-src: the src folder of the tree to compare with (git worktree add --detach ...)")
    trees = {"this tree": ROOT / "src", "baseline": args.baseline_src.resolve()}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    loads = []
    for _ in range(args.runs):
        for name in ("baseline", "this tree"):
            loads.append(os.getloadavg()[0])
            results[name].append(run_tree(trees[name]))
    medians = {name: {step: statistics.median(run[step] for run in runs) for step in STEPS}
               for name, runs in results.items()}
    print("| step | this tree | baseline | ratio |\n|---|---|---|---|")
    for step in STEPS:
        this, base = medians["this tree"][step], medians["baseline"][step]
        ratio = f"{this / base:.2f}x" if base else "-"
        print(f"| {step} | {this:.1f} | {base:.1f} | {ratio} |")
    if args.record:
        cells = " | ".join(f"{medians['this tree'][step]:.1f} / {medians['baseline'][step]:.1f}" for step in STEPS)
        found = versions(sys.executable, ["gradio", "playwright"])
        row = (f"| {today()} | {revision(ROOT)} / {revision(args.baseline_src)} | {cells} | {machine()}, load "
               f"{min(loads):.1f}-{max(loads):.1f} | {', '.join(f'{k} {v}' for k, v in found.items())} | "
               f"`python bench/webui_actions.py --baseline-src {args.baseline_src} --runs {args.runs} --record` |")
        append_benchmark_row(SECTION, TABLE_HEADER, row)


if __name__ == "__main__":
    main()
