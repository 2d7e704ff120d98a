"""The interactive chat loop and the one-shot answer, with images, videos, audios and tool calls."""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from lmforge.data.multimodal.plugin import PLACEHOLDERS
from lmforge.data.templates.template import Message, ToolCall
from lmforge.errors import ConfigError, LmforgeError
from lmforge.infer.candidates import Candidate
from lmforge.infer.engine import MEDIA_KINDS, Engine

Media = dict[str, list[bytes]]  # medium (`images`, `videos`, `audios`) -> its files' bytes, in order
COMMANDS = {"/image": "images", "/video": "videos", "/audio": "audios"}  # attach one file of that medium

HELP = ("commands: /clear resets the history, /system TEXT sets the system prompt, /pick K keeps candidate K "
        "(with --n), /image PATH, /video PATH or /audio PATH attaches a file to your next message, /tools FILE.json "
        "offers tools (/tools off: none), /tool RESULT answers the model's tool call, /exit quits")


def read_tools(path: Path) -> list[dict[str, Any]]:
    """A JSON file holding a list of tool (function) definitions."""
    try:
        specs = json.loads(path.expanduser().read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"--tools {path}: cannot read a JSON list of tool specs: {err}") from None
    if not isinstance(specs, list) or not all(isinstance(spec, dict) for spec in specs):
        raise ConfigError(f"--tools {path}: must hold a JSON list of tool objects")
    return specs


def read_media(paths: list[Path], kind: str = "images") -> list[bytes]:
    """The files' bytes (images checked now; videos and audios are checked when the engine decodes them)."""
    from lmforge.serve.media import MediaPolicy

    # the person at the terminal may read their own files: allow each file's own folder
    return [MediaPolicy(allowed_dirs=(path.expanduser().resolve().parent,)).load(str(path), kind)
            for path in paths]


def _joined(first: Media, second: Media) -> Media:
    return {kind: [*first.get(kind, []), *second.get(kind, [])] for kind in MEDIA_KINDS
            if first.get(kind) or second.get(kind)}


def format_calls(calls: tuple[ToolCall, ...]) -> str:
    return "\n".join(f"[tool call] {call.name} {call.arguments_json()}" for call in calls)


def print_answer(candidate: Candidate, console: Console) -> None:
    text = candidate.content if candidate.tool_calls else candidate.text
    if text:
        console.print(text, highlight=False, markup=False, soft_wrap=True)
    if candidate.tool_calls:
        console.print(format_calls(candidate.tool_calls), highlight=False, markup=False, soft_wrap=True)


def print_candidates(candidates: list[Candidate], console: Console) -> None:
    for number, candidate in enumerate(candidates, start=1):
        logprob = f"logprob {candidate.logprob:.2f}" if candidate.logprob is not None else ""
        console.print(f"[bold]candidate {number}[/bold] [dim]{logprob} ({candidate.finish_reason})[/dim]")
        print_answer(candidate, console)


def answer_once(engine: Engine, prompt: str, system: str | None, console: Console, *,
                media: Media | None = None, tools: list[dict[str, Any]] | None = None) -> list[Candidate]:
    candidates = engine.candidates([Message("user", prompt)], system=system, tools=tools, **(media or {}))
    if len(candidates) == 1:
        print_answer(candidates[0], console)
    else:
        print_candidates(candidates, console)
    return candidates


@dataclass
class ChatSession:
    """One conversation: its turns, the media its `<image>` / `<video>` / `<audio>` placeholders refer to, and
    the tools on offer."""

    engine: Engine
    system: str | None = None
    tools: list[dict[str, Any]] | None = None
    history: list[Message] = field(default_factory=list)
    media: Media = field(default_factory=dict)  # every file of the history, per medium, in order
    pending: Media = field(default_factory=dict)  # attached to the next user message
    shown: list[Candidate] = field(default_factory=list)  # the last turn's candidates, for /pick

    def ask(self, text: str, console: Console) -> None:
        """A user message (with the attached files) and the model's answer."""
        lead = "".join(PLACEHOLDERS[kind] * len(items) for kind, items in self.pending.items())
        self._answer([Message("user", lead + text)], self.pending, console)
        self.pending = {}

    def tool_result(self, result: str, console: Console) -> None:
        """A tool result; the model answers once every call of its last turn has one."""
        calls = next((m.tool_calls for m in reversed(self.history) if m.role == "assistant"), ())
        answered = 0
        for message in reversed(self.history):
            if message.role != "tool":
                break
            answered += 1
        if not calls or self.history[-1 - answered].role != "assistant" or answered >= len(calls):
            console.print("/tool answers a tool call of the model's last answer, and there is none waiting")
            return
        if answered + 1 < len(calls):
            self.history.append(Message("tool", result))
            console.print(f"result {answered + 1} of {len(calls)} noted; /tool the next one")
            return
        self._answer([Message("tool", result)], {}, console)

    def _answer(self, turns: list[Message], media: Media, console: Console) -> None:
        history, all_media = [*self.history, *turns], _joined(self.media, media)
        inputs: dict[str, Any] = dict(tools=self.tools, **all_media)
        try:
            if self.engine.defaults.n > 1:
                console.print("[bold blue]assistant>[/bold blue]")
                self.shown = self.engine.candidates(history, system=self.system, **inputs)
                print_candidates(self.shown, console)
                answer = self.shown[0].as_message()
            else:
                answer = self._stream(history, inputs, console)
        except LmforgeError as err:  # the turn is dropped; the conversation goes on
            console.print(f"[red]error:[/red] {escape(str(err))}", highlight=False)
            return
        self.history = [*history, answer]
        self.media = all_media

    def _stream(self, history: list[Message], inputs: dict[str, Any], console: Console) -> Message:
        options = self.engine.options(n=1)
        deltas = self.engine.stream_candidates(history, system=self.system, options=options, **inputs)
        console.print("[bold blue]assistant>[/bold blue] ", end="")
        text, calls = "", ()
        for delta in deltas:
            text += delta.text
            calls = delta.tool_calls or calls
            console.print(delta.text, end="", highlight=False, markup=False)
        console.print()
        if calls:
            console.print(format_calls(calls), highlight=False, markup=False, soft_wrap=True)
        return Message("assistant", text, calls)

    def pick(self, command: str, console: Console) -> None:
        """Replace the last answer in the history with another candidate of that turn."""
        choice = command.removeprefix("/pick").strip()
        if not self.shown or not choice.isdigit() or not 1 <= int(choice) <= len(self.shown):
            console.print(f"/pick needs a candidate number from the last answer (1..{len(self.shown)})")
            return
        self.history[-1] = self.shown[int(choice) - 1].as_message()
        console.print(f"kept candidate {choice}")

    def attach(self, path: str, kind: str, console: Console) -> None:
        files = read_media([Path(path)], kind)
        self.engine.check_inputs(**{kind: files})
        self.pending = _joined(self.pending, {kind: files})
        waiting = sum(len(items) for items in self.pending.values())
        console.print(f"{kind[:-1]} attached to your next message ({waiting} waiting)")

    def offer_tools(self, argument: str, console: Console) -> None:
        if argument in ("", "off"):
            self.tools = None
            console.print("no tools on offer")
            return
        tools = read_tools(Path(argument))
        self.engine.check_inputs(tools=tools)
        self.tools = tools
        names = ", ".join(tool.get("function", tool).get("name", "?") for tool in tools)
        console.print(f"tools on offer: {names}", markup=False)


def repl(engine: Engine, system: str | None, console: Console, *, media: Media | None = None,
         tools: list[dict[str, Any]] | None = None) -> None:
    console.print(f"lmforge chat ({engine.template.name} template, {engine.backend} backend). {HELP}")
    session = ChatSession(engine, system, tools, pending=dict(media or {}))
    while True:
        try:
            text = console.input("[bold green]user>[/bold green] ").strip()
        except EOFError:
            break
        command, _, argument = text.partition(" ")
        argument = argument.strip()
        if not text:
            continue
        if text == "/exit":
            break
        try:
            if text == "/clear":
                session.history, session.media, session.pending = [], {}, {}
                console.print("history cleared")
            elif command == "/system":
                session.system = argument or None
                console.print(f"system prompt {'set' if session.system else 'cleared'}")
            elif command == "/pick":
                session.pick(text, console)
            elif command in COMMANDS:
                session.attach(argument, COMMANDS[command], console)
            elif command == "/tools":
                session.offer_tools(argument, console)
            elif command == "/tool":
                session.tool_result(argument, console)
            elif re.fullmatch(r"/[A-Za-z]+", command):  # a mistyped command, not a message for the model
                console.print(f"unknown command `{command}`; {HELP}")
            else:
                session.ask(text, console)
        except LmforgeError as err:
            console.print(f"[red]error:[/red] {escape(str(err))}", highlight=False)
