"""The Export tab: every export key (merge into export_dir, shard size, dtype, GGUF types, Modelfile,
quantized export), generated from the schema; runs `lmforge export` and shows its logit verification."""

from pathlib import Path
from typing import Any

from lmforge.serve.webui import outputs
from lmforge.serve.webui.i18n import Texts, text
from lmforge.serve.webui.schema import check_config, field_specs, form_config
from lmforge.serve.webui.state import UiState
from lmforge.serve.webui.widgets import (
    Form,
    check_status,
    command_line,
    follow_log_js,
    live_view,
    marks_html,
    polling,
    to_yaml,
)

RUN_CONFIG = "webui_export.yaml"  # written beside export_dir


def export_config(top: dict[str, Any], export: dict[str, Any]) -> dict[str, Any]:
    config = form_config(top)
    config.pop("finetuning_type", None)
    return {**config, **form_config(export)}


def run_config_path(config: dict[str, Any]) -> Path:
    folder = Path(str(config.get("export_dir") or "export"))
    return folder.parent / f"{folder.name}.{RUN_CONFIG}"


def build(texts: Texts, state: UiState, top: dict[str, Any], initial: dict[str, Any], language: Any) -> None:
    import gradio as gr

    form = Form()
    initial = {"export_dir": str(Path(initial["output_dir"]).parent / "webui-merged"), **initial}
    keys = [key for key, spec in field_specs().items() if spec.group == "export"]
    for start in range(0, len(keys), 3):
        with gr.Row():
            for key in keys[start:start + 3]:
                form.field(key, initial)
    check = gr.HTML(elem_id="export_check")
    with gr.Row():
        yaml_box = texts.bind(gr.Code(language="yaml", label=texts("yaml"), elem_id="export_yaml"), "yaml")
        command = texts.bind(gr.Textbox(label=texts("command"), interactive=False, elem_id="export_command"),
                             "command")
    with gr.Row():
        start = texts.bind(gr.Button(texts("start_export"), variant="primary", elem_id="start_export"),
                           "start_export", "value")
        stop = texts.bind(gr.Button(texts("stop"), variant="stop", elem_id="stop_export"), "stop", "value")
    status = gr.Markdown(texts("idle"), elem_id="export_status")
    verification = texts.bind(gr.Textbox(label=texts("verification"), lines=3, interactive=False,
                                         elem_id="export_verification"), "verification")
    log = texts.bind(gr.Textbox(label=texts("log"), lines=12, max_lines=12, autoscroll=True, elem_id="export_log"),
                     "log")

    top_keys, top_widgets = list(top), list(top.values())
    inputs = [*top_widgets, *form.components]

    def config_of(values: tuple[Any, ...]) -> dict[str, Any]:
        split = len(top_keys)
        return export_config(dict(zip(top_keys, values[:split], strict=True)), dict(zip(form.keys, values[split:],
                                                                                         strict=True)))

    def show(lang: str, *values: Any) -> tuple[str, str, str]:
        config = config_of(values)
        message, named = check_config(config)
        return (to_yaml(config), command_line("export", run_config_path(config)),
                marks_html(message, named, text(lang, "valid")))

    gr.on([widget.change for widget in inputs], show, [language, *inputs], [yaml_box, command, check],
          trigger_mode="always_last", show_progress="hidden")

    timer = live_view()

    def start_export(lang: str, *values: Any) -> tuple[str, str, Any]:
        config = config_of(values)
        if state.busy():
            return text(lang, "still_running"), gr.skip(), gr.skip()
        message, named = check_config(config, deep=True)
        if not message and not config.get("export_dir"):
            message, named = "`lmforge export` needs `export_dir`", {"export_dir"}
        if message:
            return check_status(message), marks_html(message, named, text(lang, "valid")), gr.skip()
        return (state.start("export", ["export"], config, run_config_path(config)),
                marks_html("", set(), text(lang, "valid")), polling(True))

    start.click(start_export, [language, *inputs], [status, check, timer])
    stop.click(lambda lang: state.stop("export") or text(lang, "not_running"), language, status)

    def tick() -> tuple[Any, ...]:
        run = state.run_to_show("export")
        if run is None:
            return *(gr.skip(),) * 3, polling(False)
        log_text = run.log()
        return run.status(), log_text, outputs.verification_lines(log_text) or gr.skip(), gr.skip()

    timer.tick(tick, None, [status, log, verification, timer], show_progress="hidden").then(
        None, None, None, js=follow_log_js("export_log"))
