"""A Python evaluator for the subset of Go's text/template that lmforge's Ollama Modelfiles use (a test helper).

Text and actions with trim markers (`{{-`, `-}}`) and comments; `if`/`else if`/`else`, `range` (over lists,
and over maps in sorted key order, as Go does), `with`; variables (`$x := ...`, `$x = ...` assigning the
variable of an enclosing scope, `$` the data); fields of maps and structs (`.A.B`, `$x.A`, `(index $l 1).A`);
string, number and boolean literals; the builtins `and`, `or` (both short-circuit), `not`, `eq` (with
several arguments), `ne`, `lt`, `le`, `gt`, `ge`, `len`, `index`, `slice`, `print`, `printf` (%s %d %v %T)
and Ollama's `json` (Go's encoding/json: compact, map keys sorted, `<`, `>`, `&` escaped). Anything else
raises `GoTemplateError`, so a Modelfile cannot rely on something this evaluator does not model.
tests/data/test_templates_ollama.py checks it against Go itself where a Go toolchain is installed.
"""

import json
import re
from dataclasses import dataclass, field
from typing import Any


class GoTemplateError(Exception):
    pass


class GoStruct:
    """A Go struct: ordered fields, each with its JSON name and `omitempty` (None: Go's default, the field name)."""

    def __init__(self, type_name: str, fields: dict[str, Any], json_tags: dict[str, tuple[str, bool]] | None = None):
        self.type_name, self.fields, self.json_tags = type_name, fields, json_tags or {}

    def go_json(self) -> str:
        parts = []
        for name, value in self.fields.items():
            key, omitempty = self.json_tags.get(name, (name, False))
            if omitempty and not truth(value):
                continue
            parts.append(f"{go_json(key)}:{go_json(value)}")
        return "{" + ",".join(parts) + "}"


class JsonStruct(GoStruct):
    """A struct whose String method writes its JSON (Ollama's templateTool): an action prints that."""

    def go_string(self) -> str:
        return self.go_json()


class JsonList(list):
    """A slice whose String method writes its JSON (Ollama's templateTools)."""

    def go_string(self) -> str:
        return go_json(list(self))


class JsonMap(dict):
    """A map whose String method writes its JSON (Ollama's templateArgs, templateProperties; nil prints `{}`)."""

    def go_string(self) -> str:
        return go_json(dict(self))


class PropertyType(list):
    """Ollama's PropertyType ([]string): a single type marshals and prints as the bare string."""

    def go_json(self) -> str:
        return go_json(self[0]) if len(self) == 1 else go_json(list(self))

    def go_string(self) -> str:
        return self[0] if len(self) == 1 else "[" + " ".join(self) + "]"


def _go_json_string(text: str) -> str:
    out = json.dumps(text, ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                          ("\u2029", "\\u2029")):
        out = out.replace(char, escaped)
    return out


def go_json(value: Any) -> str:
    """What Go's json.Marshal writes for a value of Ollama's template data."""
    if hasattr(value, "go_json"):
        return value.go_json()
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):  # decoded JSON numbers are float64 in Go
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, str):
        return _go_json_string(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_json(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_go_json_string(k)}:{go_json(value[k])}" for k in sorted(value)) + "}"
    raise GoTemplateError(f"json of {type(value).__name__} is not modelled")


def truth(value: Any) -> bool:
    """Go template truth: false, 0, nil and empty strings, slices and maps are false; structs are true."""
    if isinstance(value, GoStruct):
        return True
    return bool(value)


def go_print(value: Any) -> str:
    """How an action prints a value (fmt's %v)."""
    if hasattr(value, "go_string"):
        return value.go_string()
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    raise GoTemplateError(f"printing a {type(value).__name__} is not modelled")


# -- lexing and parsing ---------------------------------------------------------------------------------------

_TOKEN = re.compile(r'\s+|"(?:[^"\\]|\\.)*"|`[^`]*`|:=|[=(),|]|\$\w*|\.\w+|\.|-?\d+|\w+')


@dataclass
class Pipe:
    declare: list[str]  # variables, for `$x := ...` / `$i, $v := ...`
    assign: bool  # `$x = ...`
    commands: list[list[Any]]  # each a list of operands; an operand is ("kind", value, fields)


@dataclass
class Node:
    kind: str  # text, action, if, range, with
    text: str = ""
    pipe: Pipe | None = None
    body: list["Node"] = field(default_factory=list)
    orelse: list["Node"] = field(default_factory=list)


_CHAINED = "\x00"  # marks a field written right after a value (`$x.A`, `(...).A`, `.A.B`): part of that operand


def _tokens(source: str) -> list[str]:
    tokens: list[str] = []
    position = previous_end = 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if not match:
            raise GoTemplateError(f"cannot lex action {source!r} at {source[position:]!r}")
        token = match.group()
        if not token.isspace():
            chained = (token.startswith(".") and token != "." and tokens and position == previous_end
                       and tokens[-1] not in ("(", "|", ",", ":=", "="))
            tokens.append(_CHAINED + token if chained else token)
            previous_end = match.end()
        position = match.end()
    return tokens


def _split_actions(source: str) -> list[tuple[str, str]]:
    """("text", text) and ("action", inside) items, trim markers applied."""
    items: list[tuple[str, str]] = []
    position, trim_next = 0, False
    while True:
        start = source.find("{{", position)
        text = source[position:] if start < 0 else source[position:start]
        if trim_next:
            text = text.lstrip(" \t\r\n")
        if start < 0:
            items.append(("text", text))
            return items
        inner_start = start + 2
        if source.startswith("- ", inner_start) or source.startswith("-\n", inner_start):
            text, inner_start = text.rstrip(" \t\r\n"), inner_start + 1
        items.append(("text", text))
        end = inner_start
        while True:  # the first `}}` outside a string literal
            if source[end] in "\"`":
                quote = source[end]
                end += 1
                while source[end] != quote:
                    end += 2 if quote == '"' and source[end] == "\\" else 1
                end += 1
            elif source.startswith("}}", end):
                break
            else:
                end += 1
        inner = source[inner_start:end]
        trim_next = inner.endswith((" -", "\n-"))
        if trim_next:
            inner = inner[:-1]
        if not inner.strip().startswith("/*"):
            items.append(("action", inner.strip()))
        position = end + 2


def _operand(tokens: list[str], position: int) -> tuple[tuple[str, Any, list[str]], int]:
    token = tokens[position]
    if token == "(":
        depth, end = 1, position + 1
        while depth:
            depth += {"(": 1, ")": -1}.get(tokens[end], 0)
            end += 1
        operand: tuple[str, Any, list[str]] = ("pipe", _pipe(tokens[position + 1:end - 1]), [])
        position = end
    elif token.startswith('"'):
        operand, position = ("literal", json.loads(token), []), position + 1
    elif token.startswith("`"):
        operand, position = ("literal", token[1:-1], []), position + 1
    elif re.fullmatch(r"-?\d+", token):
        operand, position = ("literal", int(token), []), position + 1
    elif token in ("true", "false"):
        operand, position = ("literal", token == "true", []), position + 1
    elif token.startswith("$"):
        operand, position = ("variable", token, []), position + 1
    elif token == ".":
        operand, position = ("dot", None, []), position + 1
    elif token.startswith("."):
        operand, position = ("dot", None, [token[1:]]), position + 1
    elif re.fullmatch(r"[A-Za-z_]\w*", token):
        operand, position = ("function", token, []), position + 1
    else:
        raise GoTemplateError(f"unexpected token {token!r}")
    while position < len(tokens) and tokens[position].startswith(_CHAINED):
        operand[2].append(tokens[position][2:])
        position += 1
    return operand, position


def _pipe(tokens: list[str]) -> Pipe:
    declare, assign = [], False
    if ":=" in tokens or ("=" in tokens and tokens[0].startswith("$")):
        operator = ":=" if ":=" in tokens else "="
        split = tokens.index(operator)
        declare = [token for token in tokens[:split] if token != ","]
        assign, tokens = operator == "=", tokens[split + 1:]
    commands: list[list[Any]] = [[]]
    position = 0
    while position < len(tokens):
        if tokens[position] == "|":
            commands.append([])
            position += 1
            continue
        operand, position = _operand(tokens, position)
        commands[-1].append(operand)
    return Pipe(declare, assign, commands)


def parse(source: str) -> list[Node]:
    items = _split_actions(source)
    position = 0

    def block(stop: tuple[str, ...]) -> tuple[list[Node], str]:
        nonlocal position
        nodes: list[Node] = []
        while position < len(items):
            kind, value = items[position]
            position += 1
            if kind == "text":
                if value:
                    nodes.append(Node("text", value))
                continue
            keyword, _, rest = value.partition(" ")
            if value in stop or (keyword == "else" and "else" in stop):
                return nodes, value
            if keyword in ("if", "range", "with"):
                node = Node(keyword, pipe=_pipe(_tokens(rest)))
                node.body, ended = block(("end", "else"))
                if ended.startswith("else "):  # else if: an if in the else branch, ended by the chain's end
                    position -= 1
                    items[position] = ("action", ended[len("else "):])
                    node.orelse, _ = block(("__if_only__",))
                elif ended == "else":
                    node.orelse, _ = block(("end",))
                nodes.append(node)
            elif keyword in ("end", "else", "define", "template", "block", "break", "continue"):
                raise GoTemplateError(f"unexpected or unsupported {{{{ {value} }}}}")
            else:
                nodes.append(Node("action", pipe=_pipe(_tokens(value))))
            if stop == ("__if_only__",):  # the nested if of an else-if ends where its chain ends
                return nodes, "end"
        if stop != ():
            raise GoTemplateError(f"missing {{{{ end }}}} (expected one of {stop})")
        return nodes, ""

    nodes, _ = block(())
    return nodes


# -- evaluation -------------------------------------------------------------------------------------------------

def _field(value: Any, name: str) -> Any:
    if isinstance(value, GoStruct):
        if name not in value.fields:
            raise GoTemplateError(f"can't evaluate field {name} in type {value.type_name}")
        return value.fields[name]
    if isinstance(value, dict):
        return value.get(name)  # missingkey=zero: a map's zero value, nil
    raise GoTemplateError(f"can't evaluate field {name} of {value!r}")


def _compare(a: Any, b: Any) -> None:
    if type(a) is not type(b) and not (isinstance(a, str) and isinstance(b, str)):
        raise GoTemplateError(f"incompatible types for comparison: {a!r}, {b!r}")


def _printf(fmt: str, *args: Any) -> str:
    values = iter(args)

    def one(match: re.Match) -> str:
        verb, value = match.group(1), next(values)
        if verb == "T":
            types = {str: "string", bool: "bool", int: "float64", float: "float64",  # JSON numbers are float64
                     dict: "map[string]interface {}", list: "[]interface {}", type(None): "<nil>"}
            return types[type(value)]
        return go_print(value)

    return re.sub(r"%([sdvT])", one, fmt)


def _slice(value: Any, *bounds: int) -> Any:
    return value[bounds[0]:bounds[1]] if len(bounds) == 2 else value[bounds[0]:] if bounds else value


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        value = value[key] if isinstance(value, list) else value.get(key)
    return value


FUNCTIONS = {
    "not": lambda value: not truth(value),
    "len": lambda value: len(value),
    "index": _index,
    "slice": _slice,
    "print": lambda *values: "".join(go_print(v) for v in values),
    "printf": _printf,
    "json": go_json,
}


class Evaluator:
    def __init__(self, source: str):
        self.nodes = parse(source)

    def render(self, data: Any) -> str:
        out: list[str] = []
        self._block(self.nodes, data, [{"$": data}], out)
        return "".join(out)

    def _lookup(self, scopes: list[dict], name: str) -> dict:
        for scope in reversed(scopes):
            if name in scope:
                return scope
        raise GoTemplateError(f"undefined variable {name}")

    def _operand(self, operand: tuple, dot: Any, scopes: list[dict]) -> Any:
        kind, value, fields = operand
        if kind == "literal":
            result = value
        elif kind == "variable":
            result = self._lookup(scopes, value)[value]
        elif kind == "dot":
            result = dot
        elif kind == "pipe":
            result = self._pipe(value, dot, scopes)
        else:
            raise GoTemplateError(f"function {value} used as a value")
        for name in fields:
            result = _field(result, name)
        return result

    def _command(self, command: list, dot: Any, scopes: list[dict], final: Any, piped: bool) -> Any:
        head = command[0]
        if head[0] != "function":
            if len(command) > 1 or piped:
                raise GoTemplateError("a value cannot take arguments")
            return self._operand(head, dot, scopes)
        name = head[1]
        if name in ("and", "or"):  # short-circuit, returning the deciding value
            result: Any = None
            for operand in command[1:]:
                result = self._operand(operand, dot, scopes)
                if truth(result) != (name == "and"):
                    return result
            return final if piped and truth(result) == (name == "and") else result
        args = [self._operand(operand, dot, scopes) for operand in command[1:]] + ([final] if piped else [])
        if name in ("eq", "ne"):
            for other in args[1:]:
                _compare(args[0], other)
            equal = any(args[0] == other for other in args[1:])
            return equal if name == "eq" else not equal
        if name in ("lt", "le", "gt", "ge"):
            _compare(*args)
            a, b = args
            return {"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[name]
        if name not in FUNCTIONS:
            raise GoTemplateError(f"function {name!r} is not modelled")
        return FUNCTIONS[name](*args)

    def _pipe(self, pipe: Pipe, dot: Any, scopes: list[dict]) -> Any:
        value, piped = None, False
        for command in pipe.commands:
            value, piped = self._command(command, dot, scopes, value, piped), True
        if pipe.declare and not pipe.assign:
            scopes[-1][pipe.declare[0]] = value
        elif pipe.declare:
            self._lookup(scopes, pipe.declare[0])[pipe.declare[0]] = value
        return value

    def _block(self, nodes: list[Node], dot: Any, scopes: list[dict], out: list[str]) -> None:
        for node in nodes:
            if node.kind == "text":
                out.append(node.text)
            elif node.kind == "action":
                value = self._pipe(node.pipe, dot, scopes)
                if not node.pipe.declare:
                    out.append(go_print(value))
            elif node.kind in ("if", "with"):
                scope: dict = {}
                value = self._pipe(Pipe([], False, node.pipe.commands), dot, [*scopes, scope])
                if node.pipe.declare:
                    scope[node.pipe.declare[0]] = value
                if truth(value):
                    self._block(node.body, value if node.kind == "with" else dot, [*scopes, scope], out)
                else:
                    self._block(node.orelse, dot, [*scopes, scope], out)
            elif node.kind == "range":
                self._range(node, dot, scopes, out)

    def _range(self, node: Node, dot: Any, scopes: list[dict], out: list[str]) -> None:
        value = self._pipe(Pipe([], False, node.pipe.commands), dot, scopes)
        if value is None or isinstance(value, list | tuple):
            items = list(enumerate(value or []))
        elif isinstance(value, dict):
            items = [(key, value[key]) for key in sorted(value)]
        else:
            raise GoTemplateError(f"range can't iterate over {value!r}")
        if not items:
            self._block(node.orelse, dot, scopes, out)
        for key, element in items:
            scope: dict = {}
            names = node.pipe.declare
            if len(names) == 1:
                scope[names[0]] = element
            elif len(names) == 2:
                scope[names[0]], scope[names[1]] = key, element
            self._block(node.body, element, [*scopes, scope], out)
