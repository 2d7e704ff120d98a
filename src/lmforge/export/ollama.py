"""The Ollama `Modelfile` written next to an export: the template's TEMPLATE, SYSTEM and stop words
(data/templates/modelfile.py, tool calls included) and the run's generation parameters; none, with the reason,
for a `template: auto` jinja that Ollama's slots cannot hold."""

from pathlib import Path

from lmforge.data.templates.modelfile import modelfile_slots, template_to_modelfile
from lmforge.data.templates.template import Template


def modelfile_text(template: Template, source: str, *, bos_token: str = "", eos_token: str = "",
                   parameters: dict[str, float | int] | None = None) -> str:
    """A Modelfile for `source` (`.` for the export folder, or a GGUF file name)."""
    return template_to_modelfile(template, source=source, bos_token=bos_token, eos_token=eos_token,
                                 parameters=parameters)


def write_modelfile(export_dir: Path, template: Template, source: str, *, bos_token: str = "", eos_token: str = "",
                    parameters: dict[str, float | int] | None = None) -> str:
    """Write `export_dir`/Modelfile; the line saying so, or why there is none (it is skipped, not an error:
    the export itself is complete)."""
    slots, why = modelfile_slots(template, bos_token, eos_token)
    if slots is None:
        return f"no Ollama Modelfile: {why}"
    path = export_dir / "Modelfile"
    path.write_text(modelfile_text(slots, source, bos_token=bos_token, eos_token=eos_token, parameters=parameters),
                    encoding="utf-8")
    return f"wrote {path}"
