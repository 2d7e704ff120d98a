"""alpaca, sharegpt and OpenAI `messages` rows -> `Conversation`, checking every row.

A bad row raises `DataError` naming the file, the row (1-based) and the reason.
"""

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from lmforge.data import llamafactory_v1, openai_fields
from lmforge.data.conversation import MEDIA_KINDS, Conversation, LabeledConversation
from lmforge.data.registry import OPENAI_TAGS, DatasetSpec, Tags
from lmforge.data.templates.messages import ToolCall, normalize_tools
from lmforge.data.templates.template import Message
from lmforge.errors import DataError


class RowError(DataError):
    """One row is malformed; `reason` is the message without the location."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.reason = reason


def checked_text(value: Any, what: str, where: str, *, allow_empty: bool = False) -> str:
    if value is None and allow_empty:
        return ""
    if not isinstance(value, str):
        raise RowError(where, f"{what} must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise RowError(where, f"{what} is empty")
    return value


def row_column(row: dict[str, Any], column: str, where: str) -> Any:
    if column not in row:
        raise RowError(where, f"missing column `{column}` (columns present: {', '.join(map(str, row))})")
    return row[column]


def convert_alpaca(row: dict[str, Any], spec: DatasetSpec, where: str) -> Conversation:
    cols = spec.columns
    response = row_column(row, cols.response, where)
    if isinstance(response, list):
        raise RowError(where, f"`{cols.response}` is a list (a ranking row); lmforge supports sft rows only")
    response = checked_text(response, f"`{cols.response}`", where)
    messages, system = alpaca_prompt(row, spec, where)
    return Conversation([*messages, Message("assistant", response)], system, where)


def alpaca_prompt(row: dict[str, Any], spec: DatasetSpec, where: str) -> tuple[list[Message], str | None]:
    """The history and the question (instruction + input) of an alpaca row, and its system prompt."""
    cols = spec.columns
    prompt = checked_text(row_column(row, cols.prompt, where), f"`{cols.prompt}`", where)
    query = checked_text(row.get(cols.query), f"`{cols.query}`", where, allow_empty=True)
    messages: list[Message] = []
    if cols.history and row.get(cols.history):
        history = row[cols.history]
        if not isinstance(history, list):
            raise RowError(where, f"`{cols.history}` must be a list of [question, answer] pairs")
        for turn, pair in enumerate(history, start=1):
            if not (isinstance(pair, list | tuple) and len(pair) == 2):
                raise RowError(where, f"`{cols.history}` turn {turn} must be a [question, answer] pair")
            messages.append(Message("user", checked_text(pair[0], f"history turn {turn} question", where)))
            messages.append(Message("assistant", checked_text(pair[1], f"history turn {turn} answer", where)))
    messages.append(Message("user", f"{prompt}\n{query}" if query else prompt))
    system = checked_text(row.get(cols.system), f"`{cols.system}`", where, allow_empty=True) if cols.system else None
    return messages, system or None


def convert_sharegpt(row: dict[str, Any], spec: DatasetSpec, where: str, tags: Tags | None = None) -> Conversation:
    messages, system = sharegpt_messages(row, spec, where, tags)
    if messages[-1].role != "assistant":
        raise RowError(where, "the conversation must end with an assistant message to be trained on")
    return Conversation(messages, system, where, tools=row_tools(row, spec, where))


def row_tools(row: dict[str, Any], spec: DatasetSpec, where: str) -> list[dict[str, Any]] | None:
    """The tool definitions of a row (its `tools` column), checked."""
    column = spec.columns.tools
    return checked_tools(row.get(column), f"`{column}`", where) if column else None


def sharegpt_messages(row: dict[str, Any], spec: DatasetSpec, where: str,
                      tags: Tags | None = None) -> tuple[list[Message], str | None]:
    """Checked messages (alternating user/assistant, starting with user) and the system prompt."""
    cols, tags = spec.columns, tags or spec.effective_tags
    turns = row_column(row, cols.messages, where)
    if not isinstance(turns, list) or not turns:
        raise RowError(where, f"`{cols.messages}` must be a non-empty list of messages")
    system: str | None = None
    if cols.system and row.get(cols.system):
        system = checked_text(row[cols.system], f"`{cols.system}`", where)
    roles = {tags.user_tag: "user", tags.assistant_tag: "assistant", tags.system_tag: "system",
             tags.function_tag: "function_call", tags.observation_tag: "tool"}
    if tags is OPENAI_TAGS:  # OpenAI's newer name for the system message
        roles["developer"] = "system"
    messages: list[Message] = []
    for index, turn in enumerate(turns, start=1):
        what = f"message {index}"
        if not isinstance(turn, dict):
            raise RowError(where, f"{what} must be an object, got {type(turn).__name__}")
        role = turn.get(tags.role_tag)
        if role not in roles:
            raise RowError(where, f"{what} has unknown role {role!r} under `{tags.role_tag}`; "
                                  f"expected one of {', '.join(repr(r) for r in roles)}")
        kind = roles[role]
        if (tags.role_tag, tags.content_tag) == ("role", "content") and llamafactory_v1.is_v1_message(turn):
            try:
                turn = llamafactory_v1.as_openai_message(turn, what)
            except openai_fields.FieldError as err:
                raise RowError(where, str(err)) from None
        content = turn.get(tags.content_tag)
        calls: tuple[ToolCall, ...] = ()
        trained, call_id = True, ""
        if len(turn) == 2 and isinstance(content, str):  # role and text only, most rows: nothing more to read
            content = checked_text(content, f"{what} `{tags.content_tag}`", where)
        else:
            try:
                calls = openai_fields.tool_calls(turn["tool_calls"], what) if (
                    kind == "assistant" and turn.get("tool_calls")) else ()
                content = openai_fields.content_text(content, f"{what} `{tags.content_tag}`", allow_empty=bool(calls))
                trained = openai_fields.answer_weight(turn, kind in ("assistant", "function_call"), what)
                if kind == "assistant":
                    content = openai_fields.with_thought(turn, content, what)
                call_id = openai_fields.tool_call_id(turn, what) if kind == "tool" else ""
            except openai_fields.FieldError as err:
                raise RowError(where, str(err)) from None
        if kind == "system":
            if index != 1:
                raise RowError(where, f"{what} is a system message; only the first may be")
            system = content
        elif kind == "function_call":
            messages.append(Message("assistant", "", _tool_calls(content, what, where), trained=trained))
        else:
            messages.append(Message(kind, content, calls, call_id, trained=trained))  # type: ignore[arg-type]
    _check_order(messages, where)
    if not messages:
        raise RowError(where, "the conversation has no user or assistant message")
    return messages, system


def _check_order(messages: list[Message], where: str) -> None:
    """Questions and answers alternate, starting with a question; an answer's tool calls are followed by their
    results (at least one, at most one per call; one naming its call by `tool_call_id` must name one of them),
    then by an answer."""
    unanswered: list[ToolCall] = []
    for index, message in enumerate(messages):
        previous = messages[index - 1] if index else None
        if previous is None or (previous.role == "assistant" and not previous.tool_calls):
            expected = ("user",)
        elif previous.role == "user":
            expected = ("assistant",)
        elif previous.tool_calls:
            expected = ("tool",)
        else:  # after a tool result: the next result, or the answer
            expected = ("tool", "assistant") if unanswered else ("assistant",)
        if message.role not in expected:
            raise RowError(where, f"wrong role order: turn {index + 1} is `{message.role}`, expected "
                                  f"`{expected[-1]}` (turns alternate user, assistant, ...; tool results follow "
                                  "an answer's tool calls, at most one per call)")
        if message.tool_calls:
            unanswered = list(message.tool_calls)
        elif message.role == "tool":
            named = [call for call in unanswered if call.id and call.id == message.tool_call_id]
            if message.tool_call_id and not named and any(call.id for call in unanswered):
                raise RowError(where, f"turn {index + 1} answers tool call `{message.tool_call_id}`, which the "
                                      "answer before it does not make, or another result already answered "
                                      f"(unanswered: {', '.join(f'`{call.id}`' for call in unanswered)})")
            unanswered.remove((named or unanswered)[0])


def _json(text: str, what: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise RowError(where, f"{what} is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}): "
                              f"{text[:120]!r}") from None


def _tool_calls(content: str, what: str, where: str) -> tuple[ToolCall, ...]:
    """A function_call message: one `{"name", "arguments"}` JSON object, or a list of them."""
    parsed = _json(content, f"{what} (a function call)", where)
    calls = []
    for call in parsed if isinstance(parsed, list) else [parsed]:
        arguments = call.get("arguments", {}) if isinstance(call, dict) else None
        if isinstance(arguments, str):
            arguments = _json(arguments, f"{what} arguments", where)
        if not (isinstance(call, dict) and isinstance(call.get("name"), str) and isinstance(arguments, dict)):
            raise RowError(where, f'{what} must be {{"name": ..., "arguments": {{...}}}} (or a list of them), '
                                  f"got {content[:120]!r}")
        calls.append(ToolCall(call["name"], arguments))
    return tuple(calls)


def checked_tools(value: Any, what: str, where: str) -> list[dict[str, Any]] | None:
    """The tools column: a JSON string (LLaMA-Factory) or a list of function definitions."""
    if value in (None, "", "[]"):
        return None
    tools = _json(value, what, where) if isinstance(value, str) else value
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise RowError(where, f"{what} must be a JSON list of function definitions")
    for tool in tools:
        function = tool.get("function", tool)
        if not isinstance(function.get("name"), str):
            raise RowError(where, f"{what}: every tool needs a string `name`, got {json.dumps(tool)[:120]}")
    return normalize_tools(tools)


def convert_labeled(row: dict[str, Any], spec: DatasetSpec, where: str) -> LabeledConversation:
    """KTO rows: a trainable conversation plus a desirable/undesirable flag in the `kto_tag` column."""
    column = spec.columns.kto_tag or "label"
    label = row_column(row, column, where)
    if not isinstance(label, bool):
        raise RowError(where, f"`{column}` must be true (desirable) or false (undesirable), got {label!r}")
    conversation = _text_converter(spec)(row, where)
    return LabeledConversation(conversation, label)


def detect_format(row: dict[str, Any]) -> tuple[str, Tags | None]:
    """The shape of a row of a file given directly: OpenAI `messages`, sharegpt `conversations`, trl's `prompt`
    (with `completion`, or prompt-only for online RL), else alpaca."""
    if "messages" in row:
        return "sharegpt_messages", OPENAI_TAGS
    if "conversations" in row:
        return "sharegpt", None
    if "prompt" in row and "instruction" not in row:
        return "prompt", OPENAI_TAGS
    return "alpaca", None


def with_messages_column(spec: DatasetSpec, column: str) -> DatasetSpec:
    """`spec` reading its messages from `column` (a shape detected per row)."""
    return spec.model_copy(update={"columns": spec.columns.model_copy(update={"messages": column})})


def as_turns(value: Any, role: str) -> Any:
    """trl's `prompt` / `completion` as a list of messages: a string is one message of `role`."""
    return [{"role": role, "content": value}] if isinstance(value, str) else value


def messages_in(value: Any, column: str, where: str, spec: DatasetSpec) -> tuple[list[Message], str | None]:
    """A list of OpenAI messages held in `column` (trl's `prompt`, OpenAI's `input.messages`), checked."""
    local = spec.model_copy(update={"columns": spec.columns.model_copy(update={"messages": column, "system": None})})
    return sharegpt_messages({column: value}, local, where, OPENAI_TAGS)


def convert_prompt_completion(row: dict[str, Any], spec: DatasetSpec, where: str) -> Conversation:
    """trl's prompt-completion rows (a string or messages each); only the completion is trained, as trl does."""
    prompt = as_turns(row_column(row, "prompt", where), "user")
    completion = as_turns(row_column(row, "completion", where), "assistant")
    if not isinstance(prompt, list) or not isinstance(completion, list):
        raise RowError(where, "`prompt` and `completion` must each be a string or a list of messages")
    messages, system = messages_in([*prompt, *completion], "prompt + completion", where, spec)
    if messages[-1].role != "assistant":
        raise RowError(where, "the completion must end with an assistant message to be trained on")
    asked = len(prompt) - (1 if prompt and isinstance(prompt[0], dict) and prompt[0].get("role") == "system" else 0)
    messages = [replace(m, trained=False) if i < asked and m.role == "assistant" else m for i, m in enumerate(messages)]
    return Conversation(messages, system, where, tools=row_tools(row, spec, where))


def _part_media(row: dict[str, Any], spec: DatasetSpec, where: str) -> dict[str, list[str | None]]:
    """The media parts' files of the row's messages, in order (see `openai_fields.part_sources`)."""
    found: dict[str, list[str | None]] = {}
    names = ["messages", "prompt", "completion", "input"]
    if spec.effective_tags.content_tag == "content" and spec.columns.messages not in names:
        names.append(spec.columns.messages)  # a registered OpenAI-style column of another name
    for name in names:
        messages = row.get(name)
        if isinstance(messages, dict):  # OpenAI's preference rows: {"input": {"messages": [...]}}
            messages = messages.get("messages")
        if not isinstance(messages, list) or not any(
                isinstance(message, dict) and isinstance(message.get("content"), list) for message in messages):
            continue  # no message written as parts (most rows)
        try:
            for kind, sources in openai_fields.part_sources(messages, "a media part").items():
                found.setdefault(kind, []).extend(sources)
        except openai_fields.FieldError as err:
            raise RowError(where, str(err)) from None
    return found


def media_paths(row: dict[str, Any], spec: DatasetSpec, where: str, media_dir: Path | None) -> dict[str, list[str]]:
    """Image/video/audio columns (or the files the messages' media parts name) as checked paths, relative ones
    resolved against `media_dir`; a data file given by its path (`formatting: auto`) also finds them beside itself,
    where LLaMA-Factory's demo data keeps them."""
    beside = spec.path.parent if spec.formatting == "auto" and spec.path is not None else None
    parts = _part_media(row, spec, where)
    media: dict[str, list[str]] = {}
    for kind in MEDIA_KINDS:
        column = getattr(spec.columns, kind)
        given = parts.get(kind, [])
        sources = [source for source in given if source]
        if column and row.get(column):
            if sources:
                raise RowError(where, f"gives {kind} both in `{column}` and in its messages' parts; keep one")
            values, label = row[column] if isinstance(row[column], list) else [row[column]], f"`{column}`"
        elif given:
            if len(sources) != len(given):
                raise RowError(where, f"a {kind[:-1]} part names no file, and no `{column or kind}` column holds "
                                      "it; give each part its file (`path`, `url`), or the row's files in the column")
            values, label = sources, f"{kind[:-1]} part"
        else:
            continue
        paths: list[str] = []
        for value in values:
            if not isinstance(value, str):
                raise RowError(where, f"{label} entries must be file paths, got {type(value).__name__}")
            path = Path(value)
            if not path.is_absolute():
                # LLaMA-Factory's rows name files under `media_dir`; its v1 rows, from the working directory
                bases = [base / path for base in (media_dir, beside) if base is not None] + [path]
                path = next((candidate for candidate in bases if candidate.is_file()), bases[0])
            if not path.is_file():
                raise RowError(where, f"{label} file not found: {path} (relative paths are resolved against "
                                      "`media_dir`, the data file's folder, then the working directory)")
            paths.append(str(path))
        media[kind] = paths
    return media


def converter(spec: DatasetSpec, media_dir: Path | None = None) -> Callable[[dict[str, Any], str], Conversation]:
    base = _text_converter(spec)
    columns = any(getattr(spec.columns, kind) for kind in MEDIA_KINDS)
    if not columns and spec.formatting == "alpaca":  # no media column, and no messages to hold media parts
        return base

    def with_media(row: dict[str, Any], where: str) -> Conversation:
        conversation = base(row, where)
        if not columns and "<" not in "".join(m.content for m in conversation.messages):
            return conversation  # no media column and no placeholder a media part would have written
        media = media_paths(row, spec, where, media_dir)
        return replace(conversation, media=media) if media else conversation

    return with_media


def _text_converter(spec: DatasetSpec) -> Callable[[dict[str, Any], str], Conversation]:
    if spec.formatting == "alpaca":
        return lambda row, where: convert_alpaca(row, spec, where)
    if spec.formatting in ("sharegpt", "openai"):
        return lambda row, where: convert_sharegpt(row, spec, where)

    def auto(row: dict[str, Any], where: str) -> Conversation:
        if ("chosen" in row and "rejected" in row) or "preferred_output" in row or "chosen_messages" in row:
            raise RowError(where, "is a preference pair (chosen and rejected answers): train it with `stage: dpo` "
                                  "(or orpo, simpo, rm), or give a conversation to train on (`messages`)")
        kind, tags = detect_format(row)
        if kind == "alpaca":
            return convert_alpaca(row, spec, where)
        if kind == "prompt":
            return convert_prompt_completion(row, spec, where)
        column = "messages" if kind == "sharegpt_messages" else "conversations"
        return convert_sharegpt(row, with_messages_column(spec, column), where, tags)

    return auto
