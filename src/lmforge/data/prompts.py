"""Prompt rows for online reinforcement learning: any alpaca, sharegpt or OpenAI `messages` row becomes the
prompt a policy answers, rendered by the run's template with its generation prompt (as chat renders a
question), plus the row's other columns, which reach the reward functions.

A row's final assistant message, when it has one, is not part of the prompt: it becomes the `answer`
column (a reference for the accuracy rewards), unless the row has an `answer` column of its own.

For a vision-language model (`prompt_media_converter`) a row keeps its images: the prompt text keeps its
`<image>` placeholders as the template rendered them, and `prompt_images` holds the checked paths; the
trainer decodes them per batch and the model's processor expands each placeholder (`train/media_prompts.py`).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from lmforge.data.conversation import MEDIA_KINDS
from lmforge.data.formats import (
    RowError,
    alpaca_prompt,
    as_turns,
    detect_format,
    media_paths,
    messages_in,
    row_tools,
    sharegpt_messages,
    with_messages_column,
)
from lmforge.data.multimodal.media import MediaError
from lmforge.data.multimodal.plugin import check_placeholders
from lmforge.data.registry import DatasetSpec
from lmforge.data.report import DataReport
from lmforge.data.templates.encoding import batch_token_ids
from lmforge.data.templates.template import Message, Template, Thinking
from lmforge.errors import DataError, TemplateError

ANSWER_COLUMN = "answer"
SOURCE_COLUMN = "prompt_source"  # "file:row" of each prompt, so a failing reward names its row
PROMPT_COLUMN = "prompt"  # the rendered prompt text (what trl's trainers read)
PROMPT_IDS_COLUMN = "prompt_ids"
IMAGES_COLUMN = "prompt_images"  # a vision-language run's image paths per prompt
# Names the trainers pass to reward functions themselves: a dataset column of that name would be shadowed.
RESERVED_COLUMNS = frozenset({"prompt", "prompts", "completion", "completions", "completion_ids", "trainer_state",
                              "log_extra", "log_metric", "environments", "prompt_ids", "image", "images",
                              SOURCE_COLUMN, IMAGES_COLUMN})


@dataclass(frozen=True)
class PromptRow:
    messages: list[Message]  # ends with a user message (or tool results)
    system: str | None
    source: str
    tools: list[dict[str, Any]] | None = None
    columns: dict[str, Any] = field(default_factory=dict)  # the row's other columns, `answer` included
    media: dict[str, list[str]] = field(default_factory=dict)  # image paths (vision-language runs)


def _consumed(spec: DatasetSpec, formatting: str) -> set[str]:
    """The columns a row's prompt is made of."""
    cols = spec.columns
    names = {cols.system, cols.tools, *(getattr(cols, kind) for kind in MEDIA_KINDS)}
    if formatting == "alpaca":
        names |= {cols.prompt, cols.query, cols.response, cols.history}
    elif formatting == "prompt":  # trl's columns; a string completion becomes the `answer` column
        names |= {"prompt", "completion"}
    else:
        names.add(cols.messages)
    return {name for name in names if name}


def _prompt_row(row: dict[str, Any], spec: DatasetSpec, where: str, media_dir: Path | None = None,
                keep_media: bool = False) -> PromptRow:
    formatting, tags = spec.formatting, None
    if formatting == "auto":
        kind, tags = detect_format(row)
        formatting = kind if kind in ("alpaca", "prompt") else "sharegpt"
        if formatting == "sharegpt":
            spec = with_messages_column(spec, "messages" if kind == "sharegpt_messages" else "conversations")
    answer = None
    if formatting == "prompt":  # trl's prompt-only (or prompt-completion) rows
        messages, system = messages_in(as_turns(row["prompt"], "user"), "prompt", where, spec)
        completion = row.get("completion")
        answer = completion if isinstance(completion, str) and completion.strip() else None
    elif formatting == "alpaca":
        messages, system = alpaca_prompt(row, spec, where)
        response = row.get(spec.columns.response)
        answer = response if isinstance(response, str) and response.strip() else None
    else:
        messages, system = sharegpt_messages(row, spec, where, tags)
        if messages[-1].role == "assistant":
            answer, messages = messages[-1].content, messages[:-1]
        if not messages:
            raise RowError(where, "the conversation has no question before its answer")
    media = _media(row, spec, where, media_dir, messages) if keep_media else {}
    for name in MEDIA_KINDS:
        column = getattr(spec.columns, name)
        if not keep_media and column and row.get(column):
            raise RowError(where, f"has {name} (`{column}`), but the model is text-only: train a vision-language "
                                  "model on image prompts, or remove the media columns from the dataset registration")
    consumed = _consumed(spec, formatting)
    columns = {name: value for name, value in row.items() if name not in consumed}
    shadowed = sorted(name for name in columns if name in RESERVED_COLUMNS)
    if shadowed:
        raise RowError(where, f"column {', '.join(f'`{n}`' for n in shadowed)} has a name the trainer gives its "
                              "reward functions itself: rename it in the data (or map it in dataset_info.json)")
    if answer is not None:
        columns.setdefault(ANSWER_COLUMN, answer)
    return PromptRow(messages, system, where, tools=row_tools(row, spec, where), columns=columns, media=media)


def _media(row: dict[str, Any], spec: DatasetSpec, where: str, media_dir: Path | None,
           messages: list[Message]) -> dict[str, list[str]]:
    """The prompt's images, checked: trl's online trainers take images only, one `<image>` each in the prompt
    (an image referred to only by the final answer has no place in it)."""
    media = {kind: paths for kind, paths in media_paths(row, spec, where, media_dir).items() if paths}
    other = [kind for kind in media if kind != "images"]
    if other:
        raise RowError(where, f"has {', '.join(other)}: online RL stages take images only (trl's GRPO/RLOO "
                              "trainers); remove those columns from the dataset registration")
    try:
        check_placeholders(messages, media, where)
    except MediaError as err:
        raise RowError(where, str(err).removeprefix(f"{where}: ")) from None
    return media


def prompt_converter(spec: DatasetSpec, media_dir: Path | None = None) -> Callable[[dict[str, Any], str], PromptRow]:
    if spec.ranking:
        raise DataError(f"dataset `{spec.name}`: online RL stages read prompts, not ranking rows")
    return lambda row, where: _prompt_row(row, spec, where)


def prompt_media_converter(spec: DatasetSpec,
                           media_dir: Path | None = None) -> Callable[[dict[str, Any], str], PromptRow]:
    """Prompt rows that keep their images (a vision-language model's run)."""
    if spec.ranking:
        raise DataError(f"dataset `{spec.name}`: online RL stages read prompts, not ranking rows")
    return lambda row, where: _prompt_row(row, spec, where, media_dir, keep_media=True)


def render_prompt(item: PromptRow, template: Template, tokenizer: Any, enable_thinking: Thinking | None) -> str:
    """The prompt as the model sees it when asked to answer: the template's rendering with its generation
    prompt, as `lmforge chat` renders a question."""
    try:
        return template.render_text(item.messages, system=item.system, tools=item.tools, add_generation_prompt=True,
                                    enable_thinking=enable_thinking, bos_token=tokenizer.bos_token or "",
                                    eos_token=tokenizer.eos_token or "")
    except TemplateError as err:
        raise TemplateError(f"{item.source}: {err}") from None


def prompt_columns(items: list[PromptRow], template: Template, tokenizer: Any, enable_thinking: Thinking | None,
                   report: DataReport) -> dict[str, list[Any]]:
    """The rendered prompts (text and ids), their sources, and every other column (None where a row lacks it)."""
    texts = [render_prompt(item, template, tokenizer, enable_thinking) for item in items]
    ids = batch_token_ids(tokenizer, texts, add_special_tokens=False)
    report.tokens += sum(map(len, ids))
    names = list(dict.fromkeys(name for item in items for name in item.columns))
    columns: dict[str, list[Any]] = {PROMPT_COLUMN: texts, PROMPT_IDS_COLUMN: ids,
                                     SOURCE_COLUMN: [item.source for item in items]}
    if any(item.media for item in items):
        columns[IMAGES_COLUMN] = [item.media.get("images", []) for item in items]
        for item in items:
            report.media_items["images"] = report.media_items.get("images", 0) + len(item.media.get("images", []))
    for name in names:
        values = [item.columns.get(name) for item in items]
        try:
            pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
            raise DataError(f"column `{name}` holds values of different types across rows ({err}); first row: "
                            f"{items[0].source}: give every row the same type") from None
        columns[name] = values
    return columns
