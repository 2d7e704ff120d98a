"""The web UI (`lmforge webui`): a top bar (language, model, template, method, adapters) over four tabs,
Train, Evaluate & Predict, Chat and Export, one module each.

It is a thin layer: the forms are generated from the config schema, and training, prediction, export
and the data report run the real CLI commands on the YAML the form wrote (`runner.CommandRun`); chat
uses the engine `lmforge chat` uses, in this process. Nothing is fetched from the network.
"""

import os
from pathlib import Path
from typing import Any

from lmforge.serve.webui import chat_tab, eval_tab, export_tab, train_tab
from lmforge.serve.webui.choices import PACKAGED_DATA, local_model_folders, model_info, registered_models, run_folders
from lmforge.serve.webui.i18n import DEFAULT_LANGUAGE, Texts, from_accept_language, languages, text
from lmforge.serve.webui.schema import field_specs
from lmforge.serve.webui.state import UiState
from lmforge.serve.webui.widgets import Form, field_id

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home: the UI runs offline

DEFAULT_MODEL = "builtin:smollm2-135m-instruct"
# logs keep the columns of the tables the commands print
STYLE = "<style>#train_log textarea, #eval_log textarea, #export_log textarea {font-family: monospace}</style>"


def initial_values(defaults: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """The form a user first sees: a short LoRA SFT run on the packaged identity data (an absolute path,
    so it works from any folder), then whatever the defaults YAML says."""
    return {"model_name_or_path": DEFAULT_MODEL, "stage": "sft", "finetuning_type": "lora",
            "dataset_dir": str(PACKAGED_DATA), "dataset": ["identity"],
            "output_dir": str(workdir / "saves" / "webui"), "learning_rate": 1e-3, "max_steps": 30,
            "per_device_train_batch_size": 8, "cutoff_len": 256, "lora_rank": 16, "logging_steps": 1,
            "overwrite_output_dir": True, **defaults}


def _model_note(lang: str, model: str) -> str:
    _, multimodal = model_info(model or "")
    if multimodal is None:
        return text(lang, "unknown_model")
    return text(lang, "multimodal" if multimodal else "text_only")


def _template_names() -> list[str]:
    from lmforge.data.templates.registry import TEMPLATES

    return ["", "auto", *TEMPLATES.names()]


def _top_bar(texts: Texts, form: Form, initial: dict[str, Any], workdir: Path, language: str) -> tuple[Any, ...]:
    import gradio as gr

    specs = field_specs()
    with gr.Row():
        lang = gr.Dropdown(languages(), value=language, label="language / 语言", elem_id="language", scale=1)
        models = list(dict.fromkeys([initial["model_name_or_path"], *registered_models(),
                                     *local_model_folders(workdir)]))
        model = form.add("model_name_or_path", texts.bind(gr.Dropdown(
            models, value=initial["model_name_or_path"], allow_custom_value=True, label=texts("model"),
            info=specs["model_name_or_path"].info, elem_id=field_id("model_name_or_path"), scale=3), "model"))
        template = form.add("template", texts.bind(gr.Dropdown(
            _template_names(), value=initial.get("template") or "", allow_custom_value=True, label=texts("template"),
            elem_id=field_id("template"), scale=2), "template"))
        method = form.add("finetuning_type", texts.bind(gr.Dropdown(
            [str(c) for c in specs["finetuning_type"].choices], value=initial["finetuning_type"],
            label=texts("method"), elem_id=field_id("finetuning_type"), scale=1), "method"))
        adapters = form.add("adapter_name_or_path", texts.bind(gr.Dropdown(
            run_folders(initial.get("output_dir", "")), value=initial.get("adapter_name_or_path") or [],
            multiselect=True, allow_custom_value=True, label=texts("adapters"),
            elem_id=field_id("adapter_name_or_path"), scale=3), "adapters"))
        refresh = texts.bind(gr.Button(texts("refresh"), elem_id="refresh_adapters", scale=0), "refresh", "value")
    note = gr.Markdown(_model_note(language, initial["model_name_or_path"]), elem_id="model_note")
    return lang, model, template, method, adapters, refresh, note


def build_app(defaults: dict[str, Any], workdir: Path, language: str = DEFAULT_LANGUAGE,
              where: str = "http://127.0.0.1", chat: bool = False) -> Any:
    """The web UI; `chat` (`lmforge webchat`): opened on the Chat tab, the defaults' model loading as the page
    opens, with every key of the defaults (generation, thinking, backend) applied to it."""
    import gradio as gr

    workdir = workdir.resolve()
    state = UiState(workdir)
    texts = Texts(language)
    initial = initial_values(defaults, workdir)
    train_form = Form()
    with gr.Blocks(title="lmforge", analytics_enabled=False) as app:
        gr.Markdown("# lmforge")
        gr.HTML(STYLE)
        lang, model, template, _, adapters, refresh, note = _top_bar(texts, train_form, initial, workdir, language)
        top = {key: train_form.widgets[key] for key in
               ("model_name_or_path", "template", "finetuning_type", "adapter_name_or_path")}
        with gr.Tabs(selected="chat" if chat else None):
            with gr.Tab(texts("tab_train"), id="train", elem_id="tab_train") as tab:
                texts.bind(tab, "tab_train")
                train_tab.build(texts, state, train_form, initial, lang)
            with gr.Tab(texts("tab_eval"), id="eval", elem_id="tab_eval") as tab:
                texts.bind(tab, "tab_eval")
                eval_tab.build(texts, state, top, train_form.widgets["dataset_dir"], initial, lang)
            with gr.Tab(texts("tab_chat"), id="chat", elem_id="tab_chat") as tab:
                texts.bind(tab, "tab_chat")
                chat_loading = chat_tab.build(texts, state, top, initial, lang, config=defaults if chat else None)
            with gr.Tab(texts("tab_export"), id="export", elem_id="tab_export") as tab:
                texts.bind(tab, "tab_export")
                export_tab.build(texts, state, top, initial, lang)
        gr.Markdown(texts("network", where=where), elem_id="network_note")

        def fill_from_model(lang_now: str, name: str) -> tuple[Any, str]:
            registered_template, _ = model_info(name or "")
            return (registered_template if registered_template else gr.skip()), _model_note(lang_now, name)

        model.change(fill_from_model, [lang, model], [template, note])
        output_dir = train_form.widgets["output_dir"]

        def refresh_adapters(folder: str) -> Any:
            return gr.update(choices=run_folders(folder))

        refresh.click(refresh_adapters, output_dir, adapters)
        output_dir.change(refresh_adapters, output_dir, adapters)

        def switch(lang_now: str, name: str) -> list[Any]:
            return [*texts.updates(lang_now), _model_note(lang_now, name)]

        lang.change(switch, [lang, model], [*texts.components, note])

        def detect(request: gr.Request) -> str:
            header = request.headers.get("accept-language") if request is not None else None
            return from_accept_language(header)

        app.load(detect, None, lang)
        if chat:
            load_model, inputs, status = chat_loading
            app.load(load_model, inputs, status)
    return app


def launch(defaults: dict[str, Any], *, host: str, port: int, workdir: Path, share: bool = False,
           chat: bool = False) -> None:
    where = "a public gradio.live link (--share)" if share else f"http://{host}:{port}"
    app = build_app(defaults, workdir, where=where, chat=chat)
    app.launch(server_name=host, server_port=port, share=share, ssr_mode=False, quiet=True)
