"""The Ollama `Modelfile` written next to an export: the template's TEMPLATE, SYSTEM and stop words
(data/templates/modelfile.py, tool calls included) and the run's generation parameters."""

from pathlib import Path

from lmforge.data.templates.modelfile import template_to_modelfile
from lmforge.data.templates.template import Template


def modelfile_text(template: Template, source: str, *, bos_token: str = "", eos_token: str = "",
                   parameters: dict[str, float | int] | None = None) -> str:
    """A Modelfile for `source` (`.` for the export folder, or a GGUF file name)."""
    return template_to_modelfile(template, source=source, bos_token=bos_token, eos_token=eos_token,
                                 parameters=parameters)


def write_modelfile(export_dir: Path, template: Template, source: str, **kwargs: object) -> Path:
    path = export_dir / "Modelfile"
    path.write_text(modelfile_text(template, source, **kwargs), encoding="utf-8")  # type: ignore[arg-type]
    return path
