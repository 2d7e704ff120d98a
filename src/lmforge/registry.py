"""One small registry shape for every kind of registration (templates, tool formats, stages,
multimodal families, model groups, CLI commands).

A registry maps names (and aliases) to entries. Its builtin entries are registered by importing
the modules of one package on first use, so adding an entry is adding one module (or one line in
one): nothing else lists them. A lookup of an unknown name fails with the registry's own error
class, a "did you mean" and where to see the known names.
"""

import difflib
import importlib
import pkgutil
from collections.abc import Iterator
from typing import Generic, TypeVar

from lmforge.errors import LmforgeError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names -> entries of one kind.

    `kind` names an entry in messages ("template", "stage"); `error` is the LmforgeError subclass
    raised for unknown or twice-registered names; `package` is the dotted name of the package whose
    modules register the builtin entries at import; `listing` is the command that lists them.
    """

    def __init__(self, kind: str, error: type[LmforgeError], package: str | None = None,
                 listing: str | None = None) -> None:
        self.kind, self.error, self.package, self.listing = kind, error, package, listing
        self._entries: dict[str, T] = {}
        self._loaded = package is None

    def register(self, name: str, entry: T, aliases: tuple[str, ...] = ()) -> T:
        """Add `entry` under `name` and its aliases; a name registered twice fails."""
        for key in (name, *aliases):
            if key in self._entries:
                raise self.error(f"{self.kind} `{key}` is registered twice")
            self._entries[key] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove `name`'s entry and all its aliases (a test that registered its own entry undoes it)."""
        entry = self._entries.pop(name)
        for key in [key for key, value in self._entries.items() if value is entry]:
            del self._entries[key]

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # first: a builtin module may look entries up while it registers its own
        package = importlib.import_module(self.package)  # type: ignore[arg-type]
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{module.name}")

    def get(self, name: str) -> T:
        self._load()
        if name in self._entries:
            return self._entries[name]
        close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
        where = f" (`{self.listing}` shows all {len(self)})" if self.listing else (
            f"; known: {', '.join(sorted(self._entries))}")
        raise self.error(f"unknown {self.kind} `{name}`{hint}{where}")

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def names(self) -> list[str]:
        """Every registered name, aliases included, sorted."""
        self._load()
        return sorted(self._entries)

    def entries(self) -> list[T]:
        """Each entry once (aliases folded), in registration order."""
        self._load()
        return list({id(entry): entry for entry in self._entries.values()}.values())

    def items(self) -> Iterator[tuple[str, T]]:
        self._load()
        return iter(list(self._entries.items()))

    def __len__(self) -> int:
        return len(self.entries())
