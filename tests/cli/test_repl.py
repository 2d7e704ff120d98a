"""The chat REPL's tool turns: a parsed call is shown and kept, `/tool RESULT` answers it."""

import io

from rich.console import Console

from lmforge.cli.repl import ChatSession
from lmforge.data.templates.template import Message
from tests.infer.test_tools import CALLS, WEATHER, engine, force  # noqa: F401 - the engine fixture


def test_a_tool_call_is_printed_kept_and_answered(engine, monkeypatch):  # noqa: F811
    out = io.StringIO()
    console = Console(file=out, width=200)
    session = ChatSession(engine, tools=[WEATHER])
    force(monkeypatch, engine, engine.template.tools.render_calls(CALLS))
    session.ask("Weather in Paris and Oslo?", console)
    assert session.history[-1] == Message("assistant", "", CALLS)
    assert '[tool call] get_weather {"city": "Paris"}' in out.getvalue()
    force(monkeypatch, engine, "Sunny in both.")
    session.tool_result("21 degrees", console)
    assert "result 1 of 2 noted" in out.getvalue()
    session.tool_result("12 degrees", console)
    assert [m.role for m in session.history] == ["user", "assistant", "tool", "tool", "assistant"]
    assert session.history[-1] == Message("assistant", "Sunny in both.")
    session.tool_result("late", console)
    assert "there is none waiting" in out.getvalue()


def test_an_unknown_slash_command_shows_the_commands_and_never_reaches_the_model(engine, monkeypatch):  # noqa: F811
    from lmforge.cli import repl as repl_module

    out = io.StringIO()
    console = Console(file=out, width=400)
    lines = iter(["/histroy", "/exit"])
    monkeypatch.setattr(console, "input", lambda prompt="": next(lines))
    asked = []
    monkeypatch.setattr(ChatSession, "ask", lambda self, text, console: asked.append(text))
    repl_module.repl(engine, None, console)
    assert asked == []
    assert "unknown command `/histroy`; commands: /clear" in out.getvalue()
