"""The shared registry helper: aliases, twice-registered names, did-you-mean, lazy builtin loading."""

import sys

import pytest

from lmforge.errors import ConfigError
from lmforge.registry import Registry


def test_register_get_aliases_and_listing() -> None:
    registry: Registry[int] = Registry("widget", ConfigError, listing="lmforge widgets")
    registry.register("alpha", 1, aliases=("a",))
    registry.register("beta", 2)
    assert registry.get("a") == registry.get("alpha") == 1
    assert registry.names() == ["a", "alpha", "beta"]
    assert registry.entries() == [1, 2] and len(registry) == 2
    assert "beta" in registry and "gamma" not in registry
    with pytest.raises(ConfigError, match="widget `alpha` is registered twice"):
        registry.register("alpha", 3)
    with pytest.raises(ConfigError, match=r"unknown widget `alhpa`; did you mean `alpha`\?.*lmforge widgets"):
        registry.get("alhpa")


def test_builtin_modules_register_on_first_lookup(tmp_path, monkeypatch) -> None:
    package = tmp_path / "toy_builtins"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "one.py").write_text("from tests.test_registry import TOY\nTOY.register('one', 1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    global TOY
    TOY = Registry("toy", ConfigError, package="toy_builtins")
    try:
        assert "toy_builtins.one" not in sys.modules
        assert TOY.get("one") == 1
        with pytest.raises(ConfigError, match="known: one"):
            TOY.get("two")
    finally:
        for name in [m for m in sys.modules if m.startswith("toy_builtins")]:
            del sys.modules[name]
