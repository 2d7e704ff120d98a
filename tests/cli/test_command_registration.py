"""A CLI command is one module with `register(app)`: the shared error reporting and config loading come with it."""

import types

import typer
from typer.testing import CliRunner

from lmforge.cli import common, main


def _toy_command_module() -> types.ModuleType:
    module = types.ModuleType("toy_command")

    def shout(config: common.ConfigArg, overrides: common.OverridesArg = None) -> None:
        """Print the configured template name in capitals."""

        def body() -> None:
            from lmforge.config import load_config

            cfg = load_config(config, overrides)
            common.console.print(str(cfg.model.template).upper())

        common.run_reporting_errors(body)

    def register(app: typer.Typer) -> None:
        app.command()(shout)

    module.register = register
    return module


def test_a_command_module_registers_itself_and_reports_errors_like_the_others(tmp_path):
    app = typer.Typer()
    app.callback()(lambda: None)  # a group, as lmforge's app is
    _toy_command_module().register(app)
    config = tmp_path / "run.yaml"
    config.write_text("template: chatml\n")
    runner = CliRunner()
    result = runner.invoke(app, ["shout", str(config)])
    assert result.exit_code == 0 and "CHATML" in result.output
    result = runner.invoke(app, ["shout", str(config), "templat=qwen"])
    assert result.exit_code == 1  # one message, no traceback
    assert "error:" in result.output and "command-line override: unknown key `templat`" in result.output


def test_every_command_module_registers_the_same_way():
    assert all(callable(getattr(module, "register", None)) for module in main.COMMAND_MODULES)
    assert main.app.registered_commands or main.app.registered_groups


def test_the_web_commands_read_llamafactorys_gradio_variables():
    import typer

    from lmforge.cli.main import app

    group = typer.main.get_command(app)
    for name in ("webui", "webchat"):
        envvars = {param.name: param.envvar for param in group.commands[name].params}
        assert (envvars["host"], envvars["port"], envvars["share"]) == (
            "GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "GRADIO_SHARE"), name
