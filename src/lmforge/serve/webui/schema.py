"""The config schema as form fields: one `FieldSpec` per config key, read from the pydantic groups.

Nothing here lists keys: a key added to a group (`config/groups.py`, `config/training.py` and its
`training_fields.json`) becomes a field of the web UI with its description, range and default.
A field writes its key into the config only when its value differs from the default, so the YAML the
UI writes holds what the user chose and nothing else.
"""

import dataclasses
import enum
import re
import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import annotated_types
import yaml

from lmforge.config.groups import GROUPS
from lmforge.config.training import LMFORGE_DEFAULTS, LMFORGE_TRAINING_KEYS
from lmforge.errors import LmforgeError

Kind = Literal["bool", "choice", "choices", "int", "float", "text"]
_BOUNDS = {annotated_types.Gt: (">", "gt"), annotated_types.Ge: (">=", "ge"), annotated_types.Lt: ("<", "lt"),
           annotated_types.Le: ("<=", "le")}


@dataclass(frozen=True)
class FieldSpec:
    key: str
    group: str
    kind: Kind  # the widget: checkbox, dropdown, multi-select dropdown, number, number, text
    default: Any  # the widget's value when the user sets nothing (transformers' own for training keys)
    description: str
    choices: tuple[Any, ...] = ()
    bounds: tuple[str, ...] = ()  # e.g. (">0", "<1")
    optional: bool = False  # None is allowed: an empty widget means "not set"
    plain_text: bool = False  # text kind holding a plain string (not read as YAML)

    @property
    def info(self) -> str:
        """What the UI shows under the field: description, range and default."""
        parts = [self.description] if self.description else []
        if self.bounds:
            parts.append("range " + ", ".join(self.bounds))
        parts.append(f"default: {self.shown(self.default) if self.default not in (None, '', []) else 'not set'}")
        return " · ".join(parts)

    def shown(self, value: Any) -> Any:
        """A config value as the widget holds it."""
        if value is None:
            return [] if self.kind == "choices" else None if self.kind in ("int", "float") else (
                "" if self.kind in ("text", "choice") else value)
        if isinstance(value, enum.Enum):
            value = value.value
        if self.kind == "text" and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return ",".join(value)
        if self.kind == "text" and not isinstance(value, str):
            return yaml.safe_dump(value, default_flow_style=True).strip()
        if self.kind == "choice":
            return str(value)
        return value

    def config_value(self, widget_value: Any) -> Any:
        """The value the config gets from the widget's, or UNSET when it is the default (or empty)."""
        if widget_value in (None, "", []) or widget_value == self.shown(self.default):
            return UNSET
        if isinstance(widget_value, list):  # a multi-select (datasets, adapters, GGUF types)
            return widget_value
        if self.kind == "int" and isinstance(widget_value, float) and widget_value.is_integer():
            return int(widget_value)
        if self.kind == "choice":
            return next((c for c in self.choices if str(c) == widget_value), widget_value)
        typed_text = self.kind in ("int", "float") and isinstance(widget_value, str)  # an optional number's box
        if (self.kind == "text" and not self.plain_text) or typed_text:
            try:
                return yaml.safe_load(widget_value)
            except yaml.YAMLError:
                return widget_value  # the check then reports the key with this value
        return widget_value


UNSET = object()


def _flatten(annotation: Any) -> list[Any]:
    """The member types of a (possibly Annotated, Optional or union) annotation."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _flatten(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [member for arg in typing.get_args(annotation) for member in _flatten(arg)]
    return [annotation]


def _bounds(field: Any) -> tuple[str, ...]:
    """Range constraints, from the field's metadata and from inside its Annotated members."""
    found: list[Any] = list(field.metadata)
    stack = [field.annotation]
    while stack:
        annotation = stack.pop()
        if typing.get_origin(annotation) is typing.Annotated:
            for extra in typing.get_args(annotation)[1:]:
                found += getattr(extra, "metadata", [extra])  # a Field(...) inside Annotated carries its own
            stack.append(typing.get_args(annotation)[0])
        elif typing.get_origin(annotation) in (typing.Union, types.UnionType):
            stack += typing.get_args(annotation)
    out = []
    for item in found:
        for bound, (sign, attribute) in _BOUNDS.items():
            if isinstance(item, bound):
                out.append(f"{sign}{getattr(item, attribute)}")
    return tuple(dict.fromkeys(out))


def _kind(annotation: Any) -> tuple[Kind, tuple[Any, ...], bool, bool]:
    """(widget kind, choices, optional, plain text) of an annotation."""
    members = _flatten(annotation)
    optional = type(None) in members
    members = [m for m in members if m is not type(None)]
    if any(m is Any for m in members):
        return "text", (), True, False
    if all(typing.get_origin(m) is Literal for m in members):
        return "choice", tuple(c for m in members for c in typing.get_args(m)), optional, False
    if members == [bool]:
        return "bool", (), optional, False
    if members == [int]:
        return "int", (), optional, False
    if set(members) <= {int, float}:
        return "float", (), optional, False
    if len(members) == 1 and typing.get_origin(members[0]) is list:
        inner = typing.get_args(members[0])
        if inner and typing.get_origin(inner[0]) is Literal:
            return "choices", typing.get_args(inner[0]), optional, False
    return "text", (), optional, members == [str]


@cache
def _transformers_defaults() -> dict[str, tuple[Any, str]]:
    """TrainingArguments' own defaults and help texts: what an unset training key means."""
    from transformers import TrainingArguments

    out: dict[str, tuple[Any, str]] = {}
    for field in dataclasses.fields(TrainingArguments):
        default = field.default if field.default is not dataclasses.MISSING else (
            field.default_factory() if field.default_factory is not dataclasses.MISSING else None)
        help_text = re.sub(r"\s+", " ", str(field.metadata.get("help", ""))).strip()
        out[field.name] = (default, help_text)
    return out


@cache
def field_specs() -> dict[str, FieldSpec]:
    """Every config key as a form field, group by group in the schema's order."""
    specs: dict[str, FieldSpec] = {}
    for group, model in GROUPS.items():
        for key, field in model.model_fields.items():
            kind, choices, optional, plain = _kind(field.annotation)
            default = field.get_default(call_default_factory=True)
            description = field.description or ""
            if group == "training" and key not in LMFORGE_TRAINING_KEYS:
                own_default, description = _transformers_defaults().get(key, (None, ""))
                default = LMFORGE_DEFAULTS.get(key, own_default)
                if isinstance(default, enum.Enum):
                    default = default.value
            if kind == "bool" and default is None:  # unset means "decided later": a three-way choice
                kind, choices = "choice", (True, False)
            if kind == "choice" and optional and default is None:
                choices = ("", *choices)
            specs[key] = FieldSpec(key, group, kind, default, description, choices, _bounds(field),
                                   optional, plain)
    return specs


def form_config(values: dict[str, Any]) -> dict[str, Any]:
    """The flat config the widgets' values make: only keys whose value is not the default."""
    specs = field_specs()
    out: dict[str, Any] = {}
    for key, widget_value in values.items():
        value = specs[key].config_value(widget_value)
        if value is not UNSET:
            out[key] = value
    return out


def widget_values(config: dict[str, Any], lists: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The value of every widget for a (saved) config: its value, or the field's default. Keys in `lists`
    have multi-select widgets (a list, not comma-separated text)."""
    values = {key: spec.shown(config.get(key, spec.default)) for key, spec in field_specs().items()}
    for key in lists:
        value = config.get(key) or []
        values[key] = [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value
    return values


def check_config(config: dict[str, Any], *, deep: bool = False) -> tuple[str, set[str]]:
    """The message `lmforge check` gives for `config` ("" when valid) and the keys it names.
    `deep` also runs the preflight checks (stage rules, model reference, datasets, template)."""
    from lmforge.config import build_config

    try:
        cfg = build_config(config)
        if deep:
            from lmforge.preflight import preflight

            preflight(cfg, "check")
    except LmforgeError as err:
        message = str(err)
        named = set(re.findall(r"`([a-z_0-9]+)`", message)) & set(field_specs())
        return message, named
    return "", set()
