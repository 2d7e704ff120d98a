"""Gradio widgets for config keys, built from their `FieldSpec`, and what a form of them writes.

Each key has one widget (`Form.widgets`), whether it sits in the top bar, a tab's first rows, or
an accordion generated for its group.
"""

import shlex
from pathlib import Path
from typing import Any

import yaml

from lmforge.serve.webui.schema import FieldSpec, field_specs, form_config

GROUP_TITLES = {"model": "model", "data": "data", "finetuning": "finetuning (method, LoRA, freeze, preference)",
                "generation": "generation", "training": "training (transformers TrainingArguments)",
                "optimizer": "optimizer (GaLore, APOLLO, BAdam, Adam-mini, Muon)", "profiler": "profiler",
                "rl": "online RL (grpo, rloo: rewards, generations)", "export": "export",
                "launch": "launch (Ray Train with USE_RAY=1, torchrun's master address)", "swanlab": "SwanLab tracking",
                "evaluation": "evaluation (`lmforge eval`: MMLU, CMMLU, C-Eval)"}


def field_id(key: str) -> str:
    return f"field_{key}"


def widget(spec: FieldSpec, value: Any = None, **options: Any) -> Any:
    """The widget for one key: checkbox, dropdown, number or text box, labelled with the key."""
    import gradio as gr

    shown = spec.shown(spec.default) if value is None else value
    common: dict[str, Any] = {"label": spec.key, "info": spec.info, "elem_id": field_id(spec.key), **options}
    if spec.kind == "bool":
        return gr.Checkbox(value=bool(shown), **common)
    if spec.kind == "choice":
        return gr.Dropdown([str(c) for c in spec.choices], value=shown, **common)
    if spec.kind == "choices":
        return gr.Dropdown(list(spec.choices), value=shown or [], multiselect=True, **common)
    if spec.kind in ("int", "float") and shown is None:  # a browser's empty number box reads 0, not "unset"
        return gr.Textbox(value="", placeholder="not set", **common)
    if spec.kind in ("int", "float"):
        return gr.Number(value=shown, precision=0 if spec.kind == "int" else None, **common)
    return gr.Textbox(value=shown, lines=1, **common)


class Form:
    """The widgets of a set of config keys, in a fixed order (Gradio passes values positionally)."""

    def __init__(self) -> None:
        self.widgets: dict[str, Any] = {}

    def add(self, key: str, component: Any) -> Any:
        self.widgets[key] = component
        return component

    def field(self, key: str, initial: dict[str, Any], **options: Any) -> Any:
        spec = field_specs()[key]
        value = spec.shown(initial[key]) if key in initial else None
        return self.add(key, widget(spec, value, **options))

    def accordions(self, groups: tuple[str, ...], initial: dict[str, Any]) -> None:
        """One closed accordion per config group with every key of it that has no widget yet."""
        import gradio as gr

        for group in groups:
            keys = [key for key, spec in field_specs().items() if spec.group == group and key not in self.widgets]
            with gr.Accordion(GROUP_TITLES.get(group, group), open=False, elem_id=f"group_{group}"):
                for start in range(0, len(keys), 3):
                    with gr.Row():
                        for key in keys[start:start + 3]:
                            self.field(key, initial)

    @property
    def multiselect_keys(self) -> frozenset[str]:
        return frozenset(key for key, component in self.widgets.items() if getattr(component, "multiselect", False))

    @property
    def keys(self) -> list[str]:
        return list(self.widgets)

    @property
    def components(self) -> list[Any]:
        return list(self.widgets.values())

    def config(self, values: tuple[Any, ...] | list[Any]) -> dict[str, Any]:
        return form_config(dict(zip(self.keys, values, strict=True)))


def to_yaml(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def command_line(command: str, config_path: Path) -> str:
    """The command the UI runs, as a user would type it."""
    return f"lmforge {command} {shlex.quote(str(config_path))}"


def check_status(message: str) -> str:
    """A refused start: the check's whole message, as `lmforge check` prints it."""
    return f"`lmforge check`:\n```\n{message}\n```"


def marks_html(message: str, keys: set[str], valid: str) -> str:
    """The check's message, and a style that outlines the widgets of the keys it names in red."""
    import html

    style = "".join(f"#{field_id(key)}{{outline:2px solid #d22;border-radius:6px}}" for key in sorted(keys))
    body = (f"<pre class='lmforge-problems' style='color:#b00;white-space:pre-wrap'>{html.escape(message)}</pre>"
            if message else f"<p class='lmforge-valid' style='color:#161'>{html.escape(valid)}</p>")
    return (f"<style>{style}</style>" if style else "") + body


def live_view() -> Any:
    """A tab's poll of its background run, once a second while the run has something to show: it starts with
    the page (a page reloaded mid-run picks the run up) and with each run, and stops once the run's end is shown
    (`polling(False)` from the tick), so an idle page makes no requests; each poll costs a busy browser a redraw."""
    import gradio as gr

    return gr.Timer(1.0)


def polling(active: bool) -> Any:
    """The update that turns a tab's `live_view` on (a run started) or off (nothing left to show)."""
    import gradio as gr

    return gr.Timer(active=active)


def follow_log_js(elem_id: str) -> str:
    """Browser code that scrolls a log box to its end when its text grew (Gradio's autoscroll stops following
    once the box is refilled while the page is busy); a box that did not change is left where the user put it."""
    return (f"() => {{ const box = document.querySelector('#{elem_id} textarea'); "
            "if (box && box.value.length !== box.lmforgeSeen) { box.lmforgeSeen = box.value.length; "
            "box.scrollTop = box.scrollHeight; } }")
