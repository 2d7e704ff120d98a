"""What the web UI holds between events: the chat engine, and the one background command it runs."""

from pathlib import Path
from typing import Any

from lmforge.serve.webui.runner import CommandRun
from lmforge.serve.webui.widgets import to_yaml


class UiState:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.engine: Any = None
        self.run: CommandRun | None = None
        self.run_tab = ""  # the tab that started `run`: train, eval or export
        # user turn number -> the media sent with it, by kind ("images", "videos", "audios")
        self.chat_media: dict[int, dict[str, list[Any]]] = {}

    def busy(self) -> bool:
        return self.run is not None and self.run.running

    def start(self, tab: str, command: list[str], config: dict[str, Any], config_path: Path) -> str:
        """Write `config` to `config_path` and run `lmforge COMMAND config_path` in the background."""
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text(to_yaml(config), encoding="utf-8")
        self.run, self.run_tab = CommandRun(command, config_path, self.workdir), tab
        return self.run.status()

    def run_of(self, tab: str) -> CommandRun | None:
        return self.run if self.run_tab == tab else None

    def run_to_show(self, tab: str) -> CommandRun | None:
        """The tab's run while it runs, and once more when it has ended (its final state, log and results);
        then None, so the page keeps what the user did since (a refused start's message, say)."""
        run = self.run_of(tab)
        if run is None or run.ended_shown:
            return None
        if not run.running:
            run.ended_shown = True
        return run

    def stop(self, tab: str) -> str | None:
        run = self.run_of(tab)
        if run is None:
            return None
        run.stop()
        return run.status()

    def load_engine(self, config: dict[str, Any]) -> str:
        from lmforge.config import build_config
        from lmforge.infer.factory import create_engine

        cfg = build_config(config)
        self.close_engine()
        self.engine = create_engine(cfg)
        return (f"loaded `{config['model_name_or_path']}` ({self.engine.template.name} template, "
                f"{self.engine.backend} backend" + (f", adapters: {', '.join(cfg.model.adapter_name_or_path)})"
                                                    if cfg.model.adapter_name_or_path else ")"))

    def close_engine(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None
