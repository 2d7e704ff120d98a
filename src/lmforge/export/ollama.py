"""An Ollama `Modelfile` from a chat template: the prompt format as a Go template, stops, defaults.

Ollama renders `TEMPLATE` with Go's text/template over `.System` and `.Messages`; each slot of our
template becomes one branch with `{{content}}` replaced by the message's `.Content`.
"""

from pathlib import Path

from lmforge.data.templates.template import Template
from lmforge.errors import ExportError


def _go_slot(slot: str, content: str, bos: str, eos: str) -> str:
    if "{{" in slot.replace("{{content}}", "").replace("{{bos_token}}", "").replace("{{eos_token}}", ""):
        raise ExportError(f"template slot {slot!r} contains `{{{{`, which a Go template cannot hold literally")
    return slot.replace("{{bos_token}}", bos).replace("{{eos_token}}", eos).replace("{{content}}", content)


def go_template(template: Template, bos_token: str = "", eos_token: str = "") -> str:
    """The template as an Ollama TEMPLATE: system, then each message, then the assistant header."""
    fill = lambda slot, content="": _go_slot(slot, content, bos_token, eos_token)  # noqa: E731
    parts = [fill(template.format_prefix)]
    if template.format_system:
        parts.append("{{ if .System }}" + fill(template.format_system, "{{ .System }}") + "{{ end }}")
    parts += [
        "{{ range $i, $_ := .Messages }}",
        "{{ $last := eq (len (slice $.Messages $i)) 1 }}",
        '{{ if eq .Role "user" }}' + fill(template.format_user, "{{ .Content }}"),
        '{{ else if eq .Role "assistant" }}' + fill(template.format_generation)
        + fill(template.format_assistant, "{{ .Content }}") + "{{ if not $last }}"
        + fill(template.assistant_suffix) + "{{ end }}",
        "{{ end }}",
        '{{ if and $last (ne .Role "assistant") }}' + fill(template.format_generation) + "{{ end }}",
        "{{ end }}",
    ]
    return "".join(part for part in parts if part)


def _quoted(text: str) -> str:
    if '"""' in text:
        raise ExportError(f'cannot write {text[:40]!r}... into a Modelfile: it contains `"""`')
    return f'"""{text}"""'


def modelfile_text(template: Template, source: str, *, bos_token: str = "", eos_token: str = "",
                   parameters: dict[str, float | int] | None = None) -> str:
    """A Modelfile for `source` (`.` for the export folder, or a GGUF file name)."""
    lines = [f"FROM {source}", f"TEMPLATE {_quoted(go_template(template, bos_token, eos_token))}"]
    if template.default_system:
        lines.append(f"SYSTEM {_quoted(template.default_system)}")
    lines += [f'PARAMETER stop "{word}"' for word in template.stop_words]
    lines += [f"PARAMETER {name} {value}" for name, value in (parameters or {}).items()]
    return "\n".join(lines) + "\n"


def write_modelfile(export_dir: Path, template: Template, source: str, **kwargs: object) -> Path:
    path = export_dir / "Modelfile"
    path.write_text(modelfile_text(template, source, **kwargs), encoding="utf-8")  # type: ignore[arg-type]
    return path
