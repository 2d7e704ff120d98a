"""The Evaluate & Predict tab: `lmforge predict` on a dataset with the chosen adapters or checkpoint, then
its scores (BLEU-4, ROUGE) and a table of prompts, predictions and labels."""

from pathlib import Path
from typing import Any

from lmforge.serve.webui import outputs
from lmforge.serve.webui.choices import dataset_names
from lmforge.serve.webui.i18n import Texts, text
from lmforge.serve.webui.schema import check_config, form_config
from lmforge.serve.webui.state import UiState
from lmforge.serve.webui.widgets import check_status, command_line, follow_log_js, live_view, polling

RUN_CONFIG = "webui_predict.yaml"


def predict_config(top: dict[str, Any], dataset_dir: str, datasets: list[str], max_samples: float | None,
                   output_dir: str, max_new_tokens: float, batch_size: float) -> dict[str, Any]:
    """The config `lmforge predict` gets: the top bar's model, the eval datasets, greedy answers."""
    config = form_config(top)
    config.update(dataset_dir=dataset_dir, eval_dataset=datasets, output_dir=output_dir, do_sample=False,
                  max_new_tokens=int(max_new_tokens), infer_batch_size=int(batch_size), overwrite_output_dir=True)
    if max_samples:
        config["max_samples"] = int(max_samples)
    config.pop("finetuning_type", None)
    return {key: value for key, value in config.items() if value not in (None, "", [])}


def build(texts: Texts, state: UiState, top: dict[str, Any], dataset_dir: Any, initial: dict[str, Any],
          language: Any) -> None:
    import gradio as gr

    with gr.Row():
        datasets = texts.bind(gr.Dropdown(dataset_names(initial.get("dataset_dir", "")),
                                          value=initial.get("eval_dataset") or initial.get("dataset") or [],
                                          multiselect=True, allow_custom_value=True, label=texts("eval_dataset"),
                                          elem_id="eval_dataset"), "eval_dataset")
        max_samples = texts.bind(gr.Number(initial.get("max_samples", 20), precision=0, label=texts("max_samples"),
                                           elem_id="eval_max_samples"), "max_samples")
        max_new_tokens = texts.bind(gr.Number(initial.get("max_new_tokens", 64), precision=0,
                                              label=texts("max_new_tokens"), elem_id="eval_max_new_tokens"),
                                    "max_new_tokens")
        batch_size = gr.Number(8, precision=0, label="infer_batch_size", elem_id="eval_batch_size")
        output_dir = texts.bind(gr.Textbox(str(Path(initial["output_dir"]).parent / "webui-predict"),
                                           label=texts("predict_dir"), elem_id="eval_output_dir"), "predict_dir")
    command = texts.bind(gr.Textbox(label=texts("command"), interactive=False, elem_id="eval_command"), "command")
    with gr.Row():
        start = texts.bind(gr.Button(texts("start_predict"), variant="primary", elem_id="start_predict"),
                           "start_predict", "value")
        stop = texts.bind(gr.Button(texts("stop"), variant="stop", elem_id="stop_predict"), "stop", "value")
    status = gr.Markdown(texts("idle"), elem_id="eval_status")
    with gr.Row():
        metrics = texts.bind(gr.Dataframe(headers=["metric", "value"], label=texts("metrics"), interactive=False,
                                          elem_id="eval_metrics"), "metrics")
        log = texts.bind(gr.Textbox(label=texts("log"), lines=10, max_lines=10, autoscroll=True,
                                    elem_id="eval_log"), "log")
    table = texts.bind(gr.Dataframe(headers=["prompt", "predict", "label"], label=texts("predictions"),
                                    interactive=False, wrap=True, elem_id="eval_predictions"), "predictions")

    top_keys, top_widgets = list(top), list(top.values())
    fields = [dataset_dir, datasets, max_samples, output_dir, max_new_tokens, batch_size]

    def config_of(values: tuple[Any, ...]) -> dict[str, Any]:
        return predict_config(dict(zip(top_keys, values[:len(top_keys)], strict=True)), *values[len(top_keys):])

    def show(*values: Any) -> str:
        config = config_of(values)
        return command_line("predict", Path(config.get("output_dir", ".")) / RUN_CONFIG)

    gr.on([widget.change for widget in [*top_widgets, *fields]], show, [*top_widgets, *fields], command,
          trigger_mode="always_last", show_progress="hidden")

    timer = live_view()

    def start_predict(lang: str, *values: Any) -> tuple[str, Any]:
        config = config_of(values)
        if state.busy():
            return text(lang, "still_running"), gr.skip()
        if not config.get("eval_dataset"):
            return text(lang, "no_dataset"), gr.skip()
        message, _ = check_config(config, deep=True)
        if message:
            return check_status(message), gr.skip()
        return state.start("eval", ["predict"], config, Path(config["output_dir"]) / RUN_CONFIG), polling(True)

    start.click(start_predict, [language, *top_widgets, *fields], [status, timer])
    stop.click(lambda lang: state.stop("eval") or text(lang, "not_running"), language, status)
    dataset_dir.change(lambda folder: gr.update(choices=dataset_names(folder)), dataset_dir, datasets)

    def tick(folder: str) -> tuple[Any, ...]:
        run = state.run_to_show("eval")
        if run is None:
            return *(gr.skip(),) * 4, polling(False)
        if run.running:
            return run.status(), run.log(), gr.skip(), gr.skip(), gr.skip()
        return (run.status(), run.log(), outputs.prediction_results(folder) or gr.skip(),
                outputs.prediction_rows(folder) or gr.skip(), gr.skip())

    timer.tick(tick, output_dir, [status, log, metrics, table, timer], show_progress="hidden").then(
        None, None, None, js=follow_log_js("eval_log"))
