"""The interactive chat loop and the one-shot answer."""

from rich.console import Console

from lmforge.data.templates.template import Message
from lmforge.infer.candidates import Candidate
from lmforge.infer.engine import Engine

HELP = ("commands: /clear resets the history, /system TEXT sets the system prompt, /pick K keeps candidate K "
        "(with --n), /exit quits")


def print_candidates(candidates: list[Candidate], console: Console) -> None:
    for number, candidate in enumerate(candidates, start=1):
        logprob = f"logprob {candidate.logprob:.2f}" if candidate.logprob is not None else ""
        console.print(f"[bold]candidate {number}[/bold] [dim]{logprob} ({candidate.finish_reason})[/dim]")
        console.print(candidate.text, highlight=False, markup=False, soft_wrap=True)


def answer_once(engine: Engine, prompt: str, system: str | None, console: Console) -> list[Candidate]:
    candidates = engine.candidates([Message("user", prompt)], system=system)
    if len(candidates) == 1:
        console.print(candidates[0].text, highlight=False, markup=False, soft_wrap=True)
    else:
        print_candidates(candidates, console)
    return candidates


def repl(engine: Engine, system: str | None, console: Console) -> None:
    console.print(f"lmforge chat ({engine.template.name} template, {engine.backend} backend). {HELP}")
    history: list[Message] = []
    shown: list[Candidate] = []  # the last turn's candidates, for /pick
    while True:
        try:
            text = console.input("[bold green]user>[/bold green] ").strip()
        except EOFError:
            break
        if not text:
            continue
        if text == "/exit":
            break
        if text == "/clear":
            history.clear()
            console.print("history cleared")
            continue
        if text.startswith("/system"):
            system = text.removeprefix("/system").strip() or None
            console.print(f"system prompt {'set' if system else 'cleared'}")
            continue
        if text.startswith("/pick"):
            _pick(text, shown, history, console)
            continue
        history.append(Message("user", text))
        console.print("[bold blue]assistant>[/bold blue] ", end="")
        if engine.defaults.n > 1:
            console.print()
            shown = engine.candidates(history, system=system)
            print_candidates(shown, console)
            answer = shown[0].text
        else:
            answer = ""
            for piece in engine.stream_chat(history, system=system):
                answer += piece
                console.print(piece, end="", highlight=False, markup=False)
            console.print()
        history.append(Message("assistant", answer))


def _pick(command: str, shown: list[Candidate], history: list[Message], console: Console) -> None:
    """Replace the last answer in the history with another candidate of that turn."""
    choice = command.removeprefix("/pick").strip()
    if not shown or not choice.isdigit() or not 1 <= int(choice) <= len(shown):
        console.print(f"/pick needs a candidate number from the last answer (1..{len(shown)})")
        return
    history[-1] = Message("assistant", shown[int(choice) - 1].text)
    console.print(f"kept candidate {choice}")
