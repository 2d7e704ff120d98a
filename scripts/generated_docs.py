"""A generated section of a doc: the text between its BEGIN and END markers is a script's output.

Each script that writes one (scripts/template_docs.py, scripts/llamafactory_docs.py) builds a
`GeneratedDoc` and calls `main`: no argument rewrites the section, `--check` exits 1 when it is stale
(the tests compare `render()` with the file the same way).
"""

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

END = "<!-- END GENERATED -->"


@dataclass(frozen=True)
class GeneratedDoc:
    path: Path
    script: str  # the generating script, as its BEGIN marker names it ("scripts/template_docs.py")
    section: Callable[[], str]  # the section's text, computed when rendered

    @property
    def begin(self) -> str:
        return f"<!-- BEGIN GENERATED: {self.script} -->"

    def current(self) -> str:
        return self.path.read_text(encoding="utf-8")

    def render(self) -> str:
        """The doc with its section regenerated (the text around the markers kept)."""
        head, found, rest = self.current().partition(self.begin)
        if not found or END not in rest:
            raise SystemExit(f"{self.path}: no `{self.begin}` ... `{END}` section to regenerate")
        _, _, tail = rest.partition(END)
        return f"{head}{self.begin}\n{self.section()}\n{END}{tail}"

    def main(self, argv: list[str] | None = None) -> int:
        parser = argparse.ArgumentParser(prog=self.script, description=f"Regenerate the generated part of {self.path}.")
        parser.add_argument("--check", action="store_true", help="exit 1 when the section is stale; write nothing")
        args = parser.parse_args(argv)  # unknown arguments (and --help) end here, before anything is written
        new = self.render()
        if args.check:
            return 0 if new == self.current() else 1
        self.path.write_text(new, encoding="utf-8")
        print(f"wrote {self.path}")
        return 0
