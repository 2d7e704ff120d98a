"""What the dataset pipeline calls for multimodal models: rows in, `mm_example` column out.

Rows are checked here (files exist, one placeholder per media item) and stored without pixels;
decoding, placeholder expansion and tokenization happen once per example in the collator
(`lmforge.data.multimodal.collator`).
"""

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from lmforge.data.conversation import Conversation, LabeledConversation
from lmforge.data.formats import RowError, convert_labeled, converter, media_paths
from lmforge.data.loading import document_converter
from lmforge.data.multimodal.examples import ROW_COLUMN, Document, MediaPreference, MMItem, to_row
from lmforge.data.multimodal.media import MediaError
from lmforge.data.multimodal.plugin import check_placeholders
from lmforge.data.preference_rows import convert_preference
from lmforge.data.registry import DatasetSpec
from lmforge.data.templates.template import Message


def _checked(texts: list[Message] | list[str], media: dict[str, list[str]], where: str) -> None:
    """A placeholder mismatch is a bad row (so `on_bad_row: skip` applies to it)."""
    try:
        check_placeholders(texts, media, where)
    except MediaError as err:
        raise RowError(where, str(err).removeprefix(f"{where}: ")) from None


def mm_conversation_converter(spec: DatasetSpec,
                              media_dir: Path | None) -> Callable[[dict[str, Any], str], Conversation]:
    """SFT rows with their media columns, placeholders checked."""
    base = converter(spec, media_dir)

    def convert(row: dict[str, Any], where: str) -> Conversation:
        conversation = base(row, where)
        _checked(conversation.messages, conversation.media, where)
        return conversation

    return convert


def mm_document_converter(spec: DatasetSpec, media_dir: Path | None) -> Callable[[dict[str, Any], str], Document]:
    """Pretraining rows: the document text (with `<image>`... placeholders) and its media columns."""
    text_of = document_converter(spec)

    def convert(row: dict[str, Any], where: str) -> Document:
        document = Document(text_of(row, where), where, media_paths(row, spec, where, media_dir))
        _checked([document.text], document.media, where)
        return document

    return convert


def mm_preference_converter(spec: DatasetSpec,
                            media_dir: Path | None) -> Callable[[dict[str, Any], str], MediaPreference]:
    """Ranking rows (rm, dpo): the checked preference and its media columns."""

    def convert(row: dict[str, Any], where: str) -> MediaPreference:
        preference = MediaPreference(convert_preference(row, spec, where), media_paths(row, spec, where, media_dir))
        _checked(preference.preference.prompt, preference.media, where)
        return preference

    return convert


def mm_labeled_converter(spec: DatasetSpec,
                         media_dir: Path | None) -> Callable[[dict[str, Any], str], LabeledConversation]:
    """KTO rows: the labeled conversation with its media columns, placeholders checked."""

    def convert(row: dict[str, Any], where: str) -> LabeledConversation:
        labeled = convert_labeled(row, spec, where)
        conversation = replace(labeled.conversation, media=media_paths(row, spec, where, media_dir))
        _checked(conversation.messages, conversation.media, where)
        return replace(labeled, conversation=conversation)

    return convert


def mm_columns(items: list[MMItem]) -> dict[str, list[str]]:
    """The dataset columns of multimodal examples (text-only ones included, so batches can mix them)."""
    return {ROW_COLUMN: [to_row(item)[ROW_COLUMN] for item in items]}
