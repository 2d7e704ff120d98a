"""The interactive chat loop and the one-shot answer."""

from rich.console import Console

from lmforge.data.templates.template import Message
from lmforge.infer.engine import ChatEngine

HELP = "commands: /clear resets the history, /exit quits"


def answer_once(engine: ChatEngine, prompt: str, system: str | None, console: Console) -> str:
    answer = engine.chat([Message("user", prompt)], system=system)
    console.print(answer, highlight=False, markup=False, soft_wrap=True)
    return answer


def repl(engine: ChatEngine, system: str | None, console: Console) -> None:
    console.print(f"lmforge chat ({engine.template.name} template). {HELP}")
    history: list[Message] = []
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
        history.append(Message("user", text))
        console.print("[bold blue]assistant>[/bold blue] ", end="")
        answer = ""
        for piece in engine.stream_chat(history, system=system):
            answer += piece
            console.print(piece, end="", highlight=False, markup=False)
        console.print()
        history.append(Message("assistant", answer))
