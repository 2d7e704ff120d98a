"""The web UI's languages: one JSON file of strings per language in `locales/` (adding a language is adding
a file). The language comes from the browser's Accept-Language, or from the switch at the top.

Config keys keep their names in every language (they are what the YAML says); their descriptions come
from the schema, in English.
"""

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

LOCALES = Path(__file__).resolve().parent / "locales"
DEFAULT_LANGUAGE = "en"


@cache
def strings(language: str) -> dict[str, str]:
    return json.loads((LOCALES / f"{language}.json").read_text(encoding="utf-8"))


def languages() -> list[str]:
    return sorted(path.stem for path in LOCALES.glob("*.json"))


def text(language: str, key: str, **values: Any) -> str:
    """The string `key` in `language` (English when that language lacks it)."""
    found = strings(language).get(key) or strings(DEFAULT_LANGUAGE)[key]
    return found.format(**values) if values else found


def from_accept_language(header: str | None) -> str:
    """The first language of an Accept-Language header that has a file (zh-CN -> zh), else English."""
    known = languages()
    for part in (header or "").split(","):
        code = part.split(";")[0].strip().lower().split("-")[0]
        if code in known:
            return code
    return DEFAULT_LANGUAGE


class Texts:
    """Remembers which component attribute shows which string, so a language switch can update them all."""

    def __init__(self, language: str = DEFAULT_LANGUAGE) -> None:
        self.language = language
        self.bound: list[tuple[Any, str, str, Callable[[str], str] | None]] = []

    def __call__(self, key: str, **values: Any) -> str:
        return text(self.language, key, **values)

    def bind(self, component: Any, key: str, attribute: str = "label",
             render: Callable[[str], str] | None = None) -> Any:
        """`component`'s `attribute` shows string `key` (through `render`, when given)."""
        self.bound.append((component, attribute, key, render))
        return component

    @property
    def components(self) -> list[Any]:
        return [component for component, *_ in self.bound]

    def updates(self, language: str) -> list[Any]:
        """One gr.update per bound component, in `components` order, for `language`."""
        import gradio as gr

        out = []
        for _, attribute, key, render in self.bound:
            value = text(language, key)
            out.append(gr.update(**{attribute: render(value) if render else value}))
        return out
