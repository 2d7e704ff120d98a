"""Preference pairs (rm, dpo, orpo, simpo) -> `Preference`: a prompt ending with a question, two answers.

Registered datasets (`ranking: true`) follow LLaMA-Factory: alpaca rows with `chosen` / `rejected` columns (or an
`output` of [chosen, rejected]); sharegpt / openai rows whose turns end with a question and whose `chosen` and
`rejected` are one assistant message each. A file given directly to a preference stage is read by each row's
shape, which may also be trl's (`prompt`, `chosen`, `rejected`, as strings or lists of messages; or only `chosen`
and `rejected`, whole conversations that share everything before their last answer) or OpenAI's preference
fine-tuning rows (`input` with `messages` and `tools`, `preferred_output`, `non_preferred_output`) or LLaMA-Factory
v1's (`chosen_messages`, `rejected_messages`: two whole conversations, as trl's implicit prompt).
"""

from typing import Any

from lmforge.data import openai_fields
from lmforge.data.conversation import Preference
from lmforge.data.formats import (
    RowError,
    alpaca_prompt,
    as_turns,
    checked_text,
    checked_tools,
    messages_in,
    row_column,
    row_tools,
    sharegpt_messages,
    with_messages_column,
)
from lmforge.data.llamafactory_v1 import PREFERENCE_COLUMNS
from lmforge.data.registry import OPENAI_TAGS, DatasetSpec, Tags
from lmforge.data.templates.template import Message


def _answer(value: Any, column: str, tags: Tags, where: str) -> str:
    """One answer: a string, an assistant message, or a list holding one (trl's conversational pairs)."""
    if isinstance(value, list):
        if len(value) != 1:
            raise RowError(where, f"`{column}` must be one assistant message, got a list of {len(value)}; lmforge "
                                  "prefers one answer to another (earlier turns belong in the prompt)")
        value = value[0]
    if isinstance(value, dict):
        if value.get(tags.role_tag) != tags.assistant_tag:
            raise RowError(where, f"`{column}` must be an assistant message (`{tags.role_tag}: {tags.assistant_tag}`)")
        if value.get("tool_calls"):
            raise RowError(where, f"`{column}` makes tool calls; preference pairs are two text answers")
        try:
            return openai_fields.content_text(value.get(tags.content_tag), f"`{column}`")
        except openai_fields.FieldError as err:
            raise RowError(where, str(err)) from None
    return checked_text(value, f"`{column}`", where)


def _asked(messages: list[Message], where: str) -> list[Message]:
    if not messages or messages[-1].role != "user":
        raise RowError(where, "the prompt of a ranking row must end with a user message")
    return messages


def convert_preference(row: dict[str, Any], spec: DatasetSpec, where: str) -> Preference:
    """A ranking row of a registered dataset, or of a file given directly (any shape above)."""
    return _detected(row, spec, where) if spec.formatting == "auto" else _registered(row, spec, where)


def _registered(row: dict[str, Any], spec: DatasetSpec, where: str) -> Preference:
    """LLaMA-Factory's ranking rows. (No function here calls back into its caller: `datasets` fingerprints a
    streaming run's generator by pickling the functions it reaches, and dill recurses forever on a cycle.)"""
    cols, tags = spec.columns, spec.effective_tags
    if spec.formatting == "alpaca":
        messages, system = alpaca_prompt(row, spec, where)
        if cols.chosen and cols.rejected:
            answers = [row_column(row, cols.chosen, where), row_column(row, cols.rejected, where)]
        else:
            answers = row_column(row, cols.response, where)
            if not (isinstance(answers, list) and len(answers) == 2):
                raise RowError(where, f"`{cols.response}` of a ranking row must be [chosen, rejected]")
        chosen, rejected = (checked_text(answer, "an answer", where) for answer in answers)
        return Preference(messages, system, chosen, rejected, where, tools=row_tools(row, spec, where))
    messages, system = sharegpt_messages(row, spec, where)
    chosen_column, rejected_column = cols.chosen or "chosen", cols.rejected or "rejected"
    chosen = _answer(row_column(row, chosen_column, where), chosen_column, tags, where)
    rejected = _answer(row_column(row, rejected_column, where), rejected_column, tags, where)
    return Preference(_asked(messages, where), system, chosen, rejected, where, tools=row_tools(row, spec, where))


def _detected(row: dict[str, Any], spec: DatasetSpec, where: str) -> Preference:
    if "preferred_output" in row or "non_preferred_output" in row:  # OpenAI's preference fine-tuning
        given = row_column(row, "input", where)
        if not isinstance(given, dict):
            raise RowError(where, '`input` must be {"messages": [...], "tools": [...]}')
        messages, system = messages_in(given.get("messages"), "input.messages", where, spec)
        chosen, rejected = (_answer(row_column(row, column, where), column, OPENAI_TAGS, where)
                            for column in ("preferred_output", "non_preferred_output"))
        return Preference(_asked(messages, where), system, chosen, rejected, where,
                          tools=checked_tools(given.get("tools"), "`input.tools`", where))
    for column in ("messages", "conversations"):  # LLaMA-Factory's sharegpt / openai ranking rows
        if column in row:
            local = with_messages_column(spec, column).model_copy(
                update={"formatting": "openai" if column == "messages" else "sharegpt"})
            return _registered(row, local, where)
    if "prompt" in row:  # trl's pairs with an explicit prompt
        messages, system = messages_in(as_turns(row["prompt"], "user"), "prompt", where, spec)
        chosen, rejected = (_answer(row_column(row, column, where), column, OPENAI_TAGS, where)
                            for column in ("chosen", "rejected"))
        return Preference(_asked(messages, where), system, chosen, rejected, where, tools=row_tools(row, spec, where))
    # trl's implicit prompt, LLaMA-Factory v1's preference rows: two whole conversations
    pair = PREFERENCE_COLUMNS if PREFERENCE_COLUMNS[0] in row else ("chosen", "rejected")
    if isinstance(row.get(pair[0]), list) and isinstance(row.get(pair[1]), list):
        (chosen, system), (rejected, _) = (messages_in(row[column], column, where, spec) for column in pair)
        if chosen[:-1] != rejected[:-1] or chosen[-1].role != "assistant" or rejected[-1].role != "assistant":
            raise RowError(where, f"`{pair[0]}` and `{pair[1]}` must be the same conversation up to their last "
                                  "message, an assistant answer each (or give the shared turns as `prompt`)")
        if chosen[-1].tool_calls or rejected[-1].tool_calls:
            raise RowError(where, "the last answers make tool calls; preference pairs are two text answers")
        return Preference(_asked(chosen[:-1], where), system, chosen[-1].content, rejected[-1].content, where,
                          tools=row_tools(row, spec, where))
    local = spec.model_copy(update={"formatting": "alpaca", "columns": spec.columns.model_copy(
        update={"chosen": "chosen", "rejected": "rejected"} if "chosen" in row else {})})
    return _registered(row, local, where)
