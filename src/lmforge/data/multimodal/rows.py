"""What the dataset pipeline calls for multimodal models: rows in, `mm_example` column out.

Rows are checked here (files exist, one placeholder per media item) and stored without pixels;
decoding, placeholder expansion and tokenization happen once per example in the collator
(`lmforge.data.multimodal.collator`).
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lmforge.data.conversation import Conversation
from lmforge.data.formats import convert_preference, media_paths
from lmforge.data.loading import document_converter
from lmforge.data.multimodal.examples import ROW_COLUMN, Document, MediaPreference, to_row
from lmforge.data.registry import DatasetSpec


def mm_document_converter(spec: DatasetSpec, media_dir: Path | None) -> Callable[[dict[str, Any], str], Document]:
    """Pretraining rows: the document text (with `<image>`... placeholders) and its media columns."""
    text_of = document_converter(spec)

    def convert(row: dict[str, Any], where: str) -> Document:
        return Document(text_of(row, where), where, media_paths(row, spec, where, media_dir))

    return convert


def mm_preference_converter(spec: DatasetSpec,
                            media_dir: Path | None) -> Callable[[dict[str, Any], str], MediaPreference]:
    """Ranking rows (dpo): the checked preference and its media columns."""

    def convert(row: dict[str, Any], where: str) -> MediaPreference:
        return MediaPreference(convert_preference(row, spec, where), media_paths(row, spec, where, media_dir))

    return convert


def mm_columns(items: list[Conversation | Document | MediaPreference]) -> dict[str, list[str]]:
    """The dataset columns of multimodal examples (text-only ones included, so batches can mix them)."""
    return {ROW_COLUMN: [to_row(item)[ROW_COLUMN] for item in items]}
