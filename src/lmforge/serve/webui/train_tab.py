"""The Train tab: stage, datasets (with the data report), every config key in accordions, the check's
message, YAML and command preview, save/load, start/resume/stop, progress, log, loss plot, summary."""

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from lmforge.config.groups import GROUPS
from lmforge.errors import LmforgeError
from lmforge.serve.webui import outputs
from lmforge.serve.webui.choices import dataset_names, stage_names, stage_plots
from lmforge.serve.webui.i18n import Texts, text
from lmforge.serve.webui.schema import check_config, field_specs, widget_values
from lmforge.serve.webui.state import UiState
from lmforge.serve.webui.widgets import (
    Form,
    check_status,
    command_line,
    field_id,
    follow_log_js,
    live_view,
    marks_html,
    polling,
    to_yaml,
)

RUN_CONFIG = "webui_train.yaml"  # written into output_dir: the record of what the run was started with
FIRST_ROWS = (("output_dir", "learning_rate", "num_train_epochs", "max_steps"),
              ("per_device_train_batch_size", "gradient_accumulation_steps", "cutoff_len", "lora_rank",
               "logging_steps"))


def run_config_path(config: dict[str, Any]) -> Path:
    return Path(str(config.get("output_dir") or ".")) / RUN_CONFIG


def data_report(config: dict[str, Any], workdir: Path, examples: int = 2) -> str:
    """What `lmforge data preview` prints for `config` (it runs that command)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "preview.yaml"
        path.write_text(to_yaml(config), encoding="utf-8")
        done = subprocess.run([sys.executable, "-m", "lmforge.cli.main", "data", "preview", str(path),
                               "--examples", str(examples)], cwd=workdir, capture_output=True, text=True,
                              timeout=600, env=_plain_env())
    return (done.stdout + done.stderr).strip()


def _plain_env() -> dict[str, str]:
    import os

    return {**os.environ, "COLUMNS": "120", "TERM": "dumb", "NO_COLOR": "1"}


def build(texts: Texts, state: UiState, form: Form, initial: dict[str, Any], language: Any) -> None:
    """`language`: the top bar's language switch (handlers answer in the session's language)."""
    import gradio as gr

    with gr.Row():
        specs = field_specs()
        form.add("stage", gr.Dropdown(stage_names(), value=initial.get("stage", "sft"), label="stage",
                                      info=specs["stage"].info, elem_id=field_id("stage")))
        dataset_dir = form.field("dataset_dir", initial)
        dataset = form.add("dataset", gr.Dropdown(
            dataset_names(initial.get("dataset_dir", "")), value=initial.get("dataset") or [], multiselect=True,
            allow_custom_value=True, label="dataset", info=specs["dataset"].info, elem_id=field_id("dataset")))
        preview_button = texts.bind(gr.Button(texts("preview_data"), elem_id="preview_data"), "preview_data", "value")
    with gr.Accordion(texts("data_report"), open=False, elem_id="data_report_box") as report_box:
        report = gr.Textbox(lines=14, max_lines=30, show_label=False, elem_id="data_report")
    texts.bind(report_box, "data_report")
    for row in FIRST_ROWS:
        with gr.Row():
            for key in row:
                form.field(key, initial)
    form.accordions(tuple(group for group in GROUPS if group != "export"), initial)  # export: its own tab

    check = gr.HTML(elem_id="train_check")
    with gr.Row():
        yaml_box = texts.bind(gr.Code(language="yaml", label=texts("yaml"), elem_id="yaml_preview"), "yaml")
        with gr.Column():
            command = texts.bind(gr.Textbox(label=texts("command"), elem_id="train_command", interactive=False),
                                 "command")
            config_path = texts.bind(gr.Textbox(str(state.workdir / "saves" / "webui_configs" / "train.yaml"),
                                                label=texts("config_path"), elem_id="config_path"), "config_path")
            with gr.Row():
                save = texts.bind(gr.Button(texts("save"), elem_id="save_config"), "save", "value")
                load = texts.bind(gr.Button(texts("load"), elem_id="load_config"), "load", "value")
            saved = gr.Markdown(elem_id="config_file_status")
    with gr.Row():
        start = texts.bind(gr.Button(texts("start"), variant="primary", elem_id="start_train"), "start", "value")
        resume = texts.bind(gr.Button(texts("resume"), elem_id="resume_train"), "resume", "value")
        stop = texts.bind(gr.Button(texts("stop"), variant="stop", elem_id="stop_train"), "stop", "value")
    status = gr.Markdown(texts("idle"), elem_id="train_status")
    progress = gr.HTML(elem_id="train_progress")
    with gr.Row():
        log = texts.bind(gr.Textbox(label=texts("log"), lines=16, max_lines=16, autoscroll=True,
                                    elem_id="train_log"), "log")
        plot = texts.bind(gr.Plot(label=texts("loss_plot"), elem_id="loss_plot"), "loss_plot")
    summary = texts.bind(gr.Dataframe(headers=["", ""], label=texts("summary"), elem_id="train_summary",
                                      interactive=False), "summary")

    inputs = form.components
    timer = live_view()

    def show(lang: str, *values: Any) -> tuple[str, str, str]:
        config = form.config(values)
        message, keys = check_config(config)
        return (to_yaml(config), command_line("train", run_config_path(config)),
                marks_html(message, keys, text(lang, "valid")))

    gr.on([widget.change for widget in inputs], show, [language, *inputs], [yaml_box, command, check],
          trigger_mode="always_last", show_progress="hidden")

    def start_run(lang: str, *values: Any, resume_run: bool = False) -> tuple[str, str, Any]:
        config = form.config(values)
        if resume_run:
            config.pop("overwrite_output_dir", None)
        if state.busy():
            return text(lang, "still_running"), gr.skip(), gr.skip()
        if not config.get("output_dir"):
            return text(lang, "no_output_dir"), gr.skip(), gr.skip()
        message, keys = check_config(config, deep=True)
        if message:
            return check_status(message), marks_html(message, keys, text(lang, "valid")), gr.skip()
        return (state.start("train", ["train"], config, run_config_path(config)),
                marks_html("", set(), text(lang, "valid")), polling(True))

    start.click(start_run, [language, *inputs], [status, check, timer])
    resume.click(lambda *values: start_run(*values, resume_run=True), [language, *inputs], [status, check, timer])
    stop.click(lambda lang: state.stop("train") or text(lang, "not_running"), language, status)

    def save_config(lang: str, path: str, *values: Any) -> str:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(to_yaml(form.config(values)), encoding="utf-8")
        return f"{text(lang, 'saved')}: `{target}`"

    save.click(save_config, [language, config_path, *inputs], saved)

    def load_config(lang: str, path: str, *current: Any) -> list[Any]:
        """Only widgets whose config value differs are set: each set widget fires its change event, and a
        config's ~30 fields in the default's spelling cost a busy browser half a minute of redrawn previews."""
        from lmforge.config.loader import read_yaml

        try:
            raw = read_yaml(path)
        except LmforgeError as err:
            raise gr.Error(str(err)) from None
        unknown = sorted(set(raw) - set(form.keys))
        if unknown:
            raise gr.Error(f"{path}: keys the Train tab has no field for: {', '.join(unknown)} "
                           "(export_* keys belong in the Export tab)")
        values = widget_values(raw, form.multiselect_keys)
        specs = field_specs()
        return [f"{text(lang, 'loaded')}: `{path}`",
                *(gr.skip() if specs[key].config_value(now) == specs[key].config_value(values[key]) else values[key]
                  for key, now in zip(form.keys, current, strict=True))]

    load.click(load_config, [language, config_path, *inputs], [saved, *inputs])

    def refresh_datasets(folder: str) -> Any:
        return gr.update(choices=dataset_names(folder))

    dataset_dir.change(refresh_datasets, dataset_dir, dataset)
    preview_button.click(lambda *values: (data_report(form.config(values), state.workdir), gr.update(open=True)),
                         inputs, [report, report_box])

    drawn = {"records": -1}

    def tick(lang: str, output_dir: str, stage: str) -> tuple[Any, ...]:
        run = state.run_to_show("train")
        if run is None:
            return *(gr.skip(),) * 5, polling(False)
        records = len(outputs.log_records(output_dir))
        figure = gr.skip()
        if records != drawn["records"]:
            drawn["records"] = records
            figure = outputs.loss_figure(output_dir, stage_plots(stage))
        rows = outputs.summary_rows(output_dir) if not run.running else []
        return (run.status(), run.log(), figure, outputs.progress_html(output_dir, text(lang, "eta")),
                rows or gr.skip(), gr.skip())

    shown = [status, log, plot, progress, summary, timer]
    timer.tick(tick, [language, form.widgets["output_dir"], form.widgets["stage"]], shown,
               show_progress="hidden").then(
        None, None, None, js=follow_log_js("train_log"))
