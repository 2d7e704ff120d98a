"""The web UI: Train (form -> YAML preview -> start/stop, live log and loss plot), Chat, Export.

Training and export run the real CLI commands in a child process (`runner.CommandRun`); chat uses
the same engine as `lmforge chat`, in this process.
"""

import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

from lmforge.errors import LmforgeError
from lmforge.serve.webui.forms import METHODS, export_config, loss_figure, loss_points, to_yaml, train_config
from lmforge.serve.webui.runner import CommandRun

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home: the UI runs offline

DEFAULT_MODEL = "builtin:smollm2-135m-instruct"
CANDIDATE_METHODS = ("sample", "beam", "diverse_beam", "diverse_sample")


class UiState:
    """What the UI holds between events: one chat engine and the current background command."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.engine: Any = None
        self.run: CommandRun | None = None
        self.chat_images: dict[int, list[bytes]] = {}  # user turn number -> the images sent with it

    def start(self, command: str, config: dict[str, Any], config_path: Path) -> str:
        if self.run is not None and self.run.running:
            return f"a {self.run.command} is still running: stop it first"
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(to_yaml(config), encoding="utf-8")
        self.run = CommandRun(command, config_path, self.workdir)
        return self.run.status()

    def load_engine(self, model: str, adapter: str, template: str) -> str:
        from lmforge.config import build_config
        from lmforge.infer.factory import create_engine

        raw = {"model_name_or_path": model, "adapter_name_or_path": adapter or None, "template": template or None}
        cfg = build_config({key: value for key, value in raw.items() if value})
        if self.engine is not None:
            self.engine.close()
        self.engine = create_engine(cfg)
        return f"loaded `{model}` ({self.engine.template.name} template, {self.engine.backend} backend)"


def _chat_turn(state: UiState, history: list[dict[str, Any]], message: str, image: str | None, n: int,
               method: str, max_new_tokens: int, temperature: float) -> Iterator[tuple[list[dict[str, Any]], str]]:
    import gradio as gr

    from lmforge.data.templates.template import Message
    from lmforge.serve.media import MediaPolicy

    if state.engine is None:
        raise gr.Error("load a model first")
    if not message.strip():
        raise gr.Error("type a message")
    engine = state.engine
    try:
        images = [MediaPolicy(allowed_dirs=(Path(image).parent,)).load(image)] if image else []
        engine.check_inputs(images=images)
        options = engine.options(n=int(n), method=method, max_new_tokens=int(max_new_tokens),
                                 temperature=float(temperature), do_sample=True, **_search_sizes(method, int(n)))
    except LmforgeError as err:
        raise gr.Error(str(err)) from None
    turns = [Message(turn["role"], _content_text(turn["content"])) for turn in history
             if turn["role"] in ("user", "assistant")]
    turns.append(Message("user", message))
    # each image goes where it was sent: `<image>` placeholders in front of its user turn
    state.chat_images = {k: v for k, v in state.chat_images.items() if k < sum(t.role == "user" for t in turns)}
    if images:
        state.chat_images[sum(t.role == "user" for t in turns) - 1] = images
    turns, all_images = _with_placeholders(turns, state.chat_images)
    history = [*history, {"role": "user", "content": message}]
    inputs = {"images": all_images or None}
    try:
        if options.n == 1:
            answer = ""
            for piece in engine.stream_chat(turns, options=options, **inputs):
                answer += piece
                yield [*history, {"role": "assistant", "content": answer}], ""
            return
        candidates = engine.candidates(turns, options=options, **inputs)
    except LmforgeError as err:
        raise gr.Error(str(err)) from None
    listing = "\n\n".join(f"**candidate {i}** (logprob {c.logprob:.2f})\n\n{c.text}"
                          for i, c in enumerate(candidates, start=1))
    yield [*history, {"role": "assistant", "content": candidates[0].text}], listing


def _with_placeholders(turns: list[Any], images: dict[int, list[bytes]]) -> tuple[list[Any], list[bytes]]:
    """The turns with `<image>` placeholders in front of the user turns that had images, and those images in order."""
    from lmforge.data.multimodal.plugin import PLACEHOLDERS
    from lmforge.data.templates.template import Message

    out, ordered, user_turn = [], [], -1
    for turn in turns:
        if turn.role == "user":
            user_turn += 1
            attached = images.get(user_turn, [])
            ordered += attached
            turn = Message("user", PLACEHOLDERS["images"] * len(attached) + turn.content)
        out.append(turn)
    return out, ordered


def _search_sizes(method: str, n: int) -> dict[str, int]:
    """Beam settings for n candidates: n beams, or for diverse beams n groups of two."""
    if method == "beam":
        return {"num_beams": max(n, 2)}
    if method == "diverse_beam":
        groups = max(n, 2)
        return {"num_beams": 2 * groups, "num_beam_groups": groups}
    return {"num_beams": 1, "num_beam_groups": 1}


def _content_text(content: Any) -> str:
    """Gradio 6 may hand message content back as a list of parts; keep the text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def build_app(defaults: dict[str, Any], workdir: Path) -> Any:
    import gradio as gr

    state = UiState(workdir)
    model_default = str(defaults.get("model_name_or_path", DEFAULT_MODEL))
    template_default = str(defaults.get("template") or "")

    with gr.Blocks(title="lmforge", analytics_enabled=False) as app:
        gr.Markdown("# lmforge")
        with gr.Tab("Train"):
            with gr.Row():
                model = gr.Textbox(model_default, label="model", elem_id="train_model")
                template = gr.Textbox(template_default, label="template (empty: the builtin's own)")
                method = gr.Dropdown(list(METHODS), value=defaults.get("finetuning_type", "lora"), label="method")
            with gr.Row():
                dataset = gr.Textbox(str(defaults.get("dataset", "identity")), label="dataset", elem_id="dataset")
                dataset_dir = gr.Textbox(str(defaults.get("dataset_dir", "examples/data")), label="dataset_dir",
                                         elem_id="dataset_dir")
                output_dir = gr.Textbox(str(defaults.get("output_dir", "saves/webui")), label="output_dir",
                                        elem_id="output_dir")
            with gr.Row():
                learning_rate = gr.Number(float(defaults.get("learning_rate", 1e-3)), label="learning_rate")
                max_steps = gr.Number(int(defaults.get("max_steps", 30)), label="max_steps", precision=0,
                                      elem_id="max_steps")
                batch_size = gr.Number(int(defaults.get("per_device_train_batch_size", 8)), label="batch size",
                                       precision=0)
                cutoff_len = gr.Number(int(defaults.get("cutoff_len", 256)), label="cutoff_len", precision=0)
                lora_rank = gr.Number(int(defaults.get("lora_rank", 16)), label="lora_rank", precision=0)
            form = [model, template, dataset, dataset_dir, method, output_dir, learning_rate, max_steps, batch_size,
                    cutoff_len, lora_rank]
            preview = gr.Code(language="yaml", label="config preview", elem_id="yaml_preview")
            with gr.Row():
                start = gr.Button("Start training", variant="primary", elem_id="start_train")
                stop = gr.Button("Stop", elem_id="stop_train")
            status = gr.Markdown("idle", elem_id="train_status")
            with gr.Row():
                log = gr.Textbox(label="log", lines=16, max_lines=16, autoscroll=True, elem_id="train_log")
                plot = gr.Plot(label="loss", elem_id="loss_plot")

        with gr.Tab("Chat"):
            with gr.Row():
                chat_model = gr.Textbox(model_default, label="model", elem_id="chat_model")
                chat_adapter = gr.Textbox(str(defaults.get("adapter_name_or_path") or ""), label="adapter")
                chat_template = gr.Textbox(template_default, label="template", elem_id="chat_template")
                load = gr.Button("Load", elem_id="load_model")
            chat_status = gr.Markdown("no model yet: press Load", elem_id="chat_status")
            chatbot = gr.Chatbot(label="chat", elem_id="chatbot", height=320)
            with gr.Row():
                message = gr.Textbox(label="message", scale=4, elem_id="chat_input")
                image = gr.Image(type="filepath", label="image", scale=1)
            with gr.Row():
                n = gr.Slider(1, 8, value=1, step=1, label="candidates", elem_id="n_candidates")
                candidate_method = gr.Dropdown(list(CANDIDATE_METHODS), value="sample", label="candidate method")
                max_new_tokens = gr.Slider(1, 1024, value=int(defaults.get("max_new_tokens", 128)), step=1,
                                           label="max_new_tokens", elem_id="max_new_tokens")
                temperature = gr.Slider(0.05, 2.0, value=0.7, label="temperature")
            with gr.Row():
                send = gr.Button("Send", variant="primary", elem_id="send")
                clear = gr.Button("Clear")
            candidates = gr.Markdown(elem_id="candidates")

        with gr.Tab("Export"):
            with gr.Row():
                export_model = gr.Textbox(model_default, label="model")
                export_adapter = gr.Textbox(str(defaults.get("adapter_name_or_path") or ""), label="adapter")
                export_template = gr.Textbox(template_default, label="template")
                export_dir = gr.Textbox(str(defaults.get("export_dir", "saves/webui-merged")), label="export_dir")
            export_button = gr.Button("Export", variant="primary")
            export_status = gr.Markdown("idle")
            export_log = gr.Textbox(label="log", lines=12, max_lines=12)

        def show_yaml(*values: Any) -> str:
            return to_yaml(train_config(*values))

        for field in form:
            field.change(show_yaml, form, preview)
        app.load(show_yaml, form, preview)

        def start_training(*values: Any) -> str:
            config = train_config(*values)
            return state.start("train", config, Path(config["output_dir"]) / "webui_train.yaml")

        start.click(start_training, form, status)
        def stop_run() -> str:
            if state.run is None:
                return "idle"
            state.run.stop()
            return state.run.status()

        stop.click(stop_run, None, status)

        def refresh(output: str) -> tuple[str, str, Any, str, str]:
            run = state.run
            if run is None:
                return "idle", "", loss_figure(loss_points(output)), "idle", ""
            figure = loss_figure(loss_points(output)) if run.command == "train" else None
            if run.command == "train":
                return run.status(), run.log(), figure, "idle", ""
            return "idle", "", None, run.status(), run.log()

        timer = gr.Timer(1.0)
        timer.tick(refresh, output_dir, [status, log, plot, export_status, export_log])

        def load_model(model_name: str, adapter: str, template_name: str) -> str:
            try:
                return state.load_engine(model_name, adapter, template_name)
            except LmforgeError as err:
                raise gr.Error(str(err)) from None

        load.click(load_model, [chat_model, chat_adapter, chat_template], chat_status)
        send.click(partial(_chat_turn, state),
                   [chatbot, message, image, n, candidate_method, max_new_tokens, temperature], [chatbot, candidates])
        def clear_chat() -> tuple[list[Any], str]:
            state.chat_images = {}
            return [], ""

        clear.click(clear_chat, None, [chatbot, candidates])

        def start_export(model_name: str, adapter: str, template_name: str, folder: str) -> str:
            config = export_config(model_name, adapter, template_name, folder)
            return state.start("export", config, Path(folder).parent / f"{Path(folder).name}.webui_export.yaml")

        export_button.click(start_export, [export_model, export_adapter, export_template, export_dir], export_status)
    return app


def launch(defaults: dict[str, Any], *, host: str, port: int, workdir: Path) -> None:
    build_app(defaults, workdir).launch(server_name=host, server_port=port, ssr_mode=False, quiet=True)
