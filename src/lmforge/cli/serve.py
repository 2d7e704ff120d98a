"""`lmforge chat`, `predict`, `api` and `webui`: the inference and serving commands."""

import os
from pathlib import Path
from typing import Annotated

import typer

from lmforge.cli.common import ConfigArg, OverridesArg, console, load_command_config, run_reporting_errors


def register(app: typer.Typer) -> None:

    @app.command()
    def chat(
        config: ConfigArg,
        overrides: OverridesArg = None,
        prompt: Annotated[str | None, typer.Option(help="Answer this one prompt and exit.")] = None,
        system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
        n: Annotated[int | None, typer.Option("--n", help="Candidates per prompt (num_candidates).")] = None,
        image: Annotated[list[Path] | None, typer.Option(
            help="An image for the (first) prompt, for vision-language models (repeatable).")] = None,
        video: Annotated[list[Path] | None, typer.Option(
            help="A video for the (first) prompt, for models that take videos (repeatable).")] = None,
        audio: Annotated[list[Path] | None, typer.Option(
            help="An audio file for the (first) prompt, for models that take audio (repeatable).")] = None,
        tools: Annotated[Path | None, typer.Option(help="JSON file with a list of tool (function) specs.")] = None,
    ) -> None:
        """Chat with the model: interactive and streaming (/clear, /system, /pick, /image, /video, /audio,
        /tools, /tool, /exit), or one --prompt."""

        def body() -> None:
            cfg = load_command_config(config, overrides, (f"num_candidates={n}",) if n is not None else ())
            from lmforge.cli.repl import answer_once, read_media, read_tools, repl

            tool_specs = read_tools(tools) if tools is not None else None
            media = {kind: read_media(paths, kind) for kind, paths in
                     (("images", image), ("videos", video), ("audios", audio)) if paths}
            from lmforge.infer.factory import create_engine

            engine = create_engine(cfg)
            try:
                engine.check_inputs(tools=tool_specs, **media)
                if prompt is not None:
                    answer_once(engine, prompt, system, console, media=media, tools=tool_specs)
                else:
                    repl(engine, system, console, media=media, tools=tool_specs)
            finally:
                engine.close()

        run_reporting_errors(body)

    @app.command()
    def predict(config: ConfigArg, overrides: OverridesArg = None) -> None:
        """Answer every prompt of `eval_dataset` (or `dataset`) into output_dir/generated_predictions.jsonl,
        then score the answers against the labels (BLEU-4, ROUGE) into predict_results.json."""

        def body() -> None:
            cfg = load_command_config(config, overrides)
            from lmforge.infer.factory import create_engine
            from lmforge.infer.predict import prediction_config, predictions_path
            from lmforge.infer.predict_metrics import predict_and_score

            cfg = prediction_config(cfg)
            predictions_path(cfg)  # fail before loading the model when output_dir is missing
            engine = create_engine(cfg)
            try:
                predict_and_score(cfg, engine, console)
            finally:
                engine.close()

        run_reporting_errors(body)

    @app.command()
    def api(
        config: ConfigArg,
        overrides: OverridesArg = None,
        host: Annotated[str, typer.Option(envvar="API_HOST",
                                          help="Address to bind; 0.0.0.0 exposes the server.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(envvar="API_PORT", help="Port to listen on.")] = 8000,
        api_key: Annotated[str | None, typer.Option(envvar=["LMFORGE_API_KEY", "API_KEY"],
                                                    help="Require `Authorization: Bearer KEY`.")] = None,
        model_id: Annotated[str | None, typer.Option(envvar="API_MODEL_NAME",
                                                     help="Model name clients use; default: the model path.")] = None,
        max_tokens_limit: Annotated[int, typer.Option(help="Largest max_tokens a request may ask for.")] = 4096,
        max_request_mb: Annotated[float, typer.Option(help="Largest request body in MiB.")] = 16.0,
        allow_remote_images: Annotated[bool, typer.Option(
            help="Fetch http(s) image and video URLs (public hosts).")] = False,
        image_dir: Annotated[list[Path] | None, typer.Option(
            help="Folder local image and video paths may come from.")] = None,
        reasoning_content: Annotated[bool, typer.Option(
            help="Return a reasoning model's thought as `reasoning_content`, apart from the answer (as DeepSeek's "
                 "API and vLLM's reasoning parsers do).")] = False,
    ) -> None:
        """Serve an OpenAI-compatible API: /v1/models and /v1/chat/completions (streaming, n, stop).

        LLaMA-Factory's variables set the options: API_HOST, API_PORT, API_KEY, API_MODEL_NAME."""

        def body() -> None:
            cfg = load_command_config(config, overrides)
            from lmforge.infer.factory import create_engine
            from lmforge.serve.api import ApiSettings, serve_api
            from lmforge.serve.media import MediaPolicy

            media = MediaPolicy(max_bytes=int(max_request_mb * 1024 * 1024), allow_remote=allow_remote_images,
                                allowed_dirs=tuple(image_dir or ()))
            settings = ApiSettings(model_id=model_id or cfg.model.model_name_or_path, api_key=api_key,
                                   max_request_bytes=int(max_request_mb * 1024 * 1024),
                                   max_tokens_limit=max_tokens_limit, media=media,
                                   reasoning_content=reasoning_content)
            engine = create_engine(cfg)
            try:
                serve_api(engine, settings, host, port)
            finally:
                engine.close()

        run_reporting_errors(body)

    @app.command()
    def webui(
        config: Annotated[Path | None, typer.Argument(help="Optional YAML config: defaults for the forms.")] = None,
        host: Annotated[str, typer.Option(envvar="GRADIO_SERVER_NAME",
                                          help="Address to bind. The default, 127.0.0.1, is this machine only; "
                                               "0.0.0.0 lets anyone on your network start runs.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(envvar="GRADIO_SERVER_PORT", help="Port to listen on.")] = 7860,
        share: Annotated[bool, typer.Option(envvar="GRADIO_SHARE",
                                            help="Also publish the UI on a public gradio.live link (goes through "
                                                 "Gradio's servers; anyone with the link can use it).")] = False,
    ) -> None:
        """Web UI: Train (every stage, method and key; data preview, YAML and command, start/stop, loss plot),
        Evaluate & Predict, Chat and Export. Offline, on 127.0.0.1 unless --host/--share say otherwise
        (LLaMA-Factory's GRADIO_SERVER_NAME, GRADIO_SERVER_PORT and GRADIO_SHARE set them too)."""

        def body() -> None:
            from lmforge.cli.quiet import quiet_libraries
            from lmforge.config.loader import read_yaml

            defaults = read_yaml(config) if config is not None else {}
            quiet_libraries()
            from lmforge.serve.webui.app import launch  # gradio: after the config is read
            console.print(f"web UI on http://{host}:{port}" + (" and a public gradio.live link" if share else
                                                                " (this machine only)" if host == "127.0.0.1"
                                                                else ""))
            launch(defaults, host=host, port=port, workdir=Path(os.getcwd()), share=share)

        run_reporting_errors(body)

    @app.command()
    def webchat(
        config: ConfigArg,
        overrides: OverridesArg = None,
        host: Annotated[str, typer.Option(envvar="GRADIO_SERVER_NAME",
                                          help="Address to bind (127.0.0.1: this machine only).")] = "127.0.0.1",
        port: Annotated[int, typer.Option(envvar="GRADIO_SERVER_PORT", help="Port to listen on.")] = 7860,
        share: Annotated[bool, typer.Option(envvar="GRADIO_SHARE",
                                            help="Also publish it on a public gradio.live link.")] = False,
    ) -> None:
        """Chat in the browser (LLaMA-Factory's `webchat`): the web UI on its Chat tab, the config's model
        (adapters, template, generation keys) loading as the page opens."""

        def body() -> None:
            cfg = load_command_config(config, overrides)  # checked before gradio loads
            from lmforge.serve.webui.app import launch

            console.print(f"web chat on http://{host}:{port}" + (" and a public gradio.live link" if share else ""))
            launch(cfg.flat(only_set=True), host=host, port=port, workdir=Path(os.getcwd()), share=share, chat=True)

        run_reporting_errors(body)
