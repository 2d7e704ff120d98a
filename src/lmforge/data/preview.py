"""Show an example as the model sees it: supervised tokens highlighted, the rest dimmed."""

from collections import Counter
from pathlib import Path
from typing import Any

from datasets import Dataset
from rich.console import Console
from rich.markup import escape
from rich.text import Text
from transformers import PreTrainedTokenizerBase

from lmforge.data.conversation import LabeledConversation
from lmforge.data.dataset import PreparedData
from lmforge.data.labels import IGNORE_INDEX
from lmforge.data.multimodal.examples import ROW_COLUMN, MediaPreference, MMEncoder, from_row, split_answer

MAX_PREVIEW_TOKENS = 400


def highlight_example(example: dict[str, Any], tokenizer: PreTrainedTokenizerBase,
                      max_tokens: int = MAX_PREVIEW_TOKENS) -> Text:
    """Prompt text dim, supervised text bold green; a packed row shows its examples in turn.
    Preference rows show the prompt, then the chosen (green) and rejected (red) answers; prompt rows (online
    RL) the prompt alone."""
    if "prompt_ids" in example:
        return _highlight_preference(example, tokenizer, max_tokens)
    ids, labels = example["input_ids"][:max_tokens], example["labels"][:max_tokens]
    text = Text()
    start = 0
    for index in range(1, len(ids) + 1):
        if index == len(ids) or (labels[index] != IGNORE_INDEX) != (labels[start] != IGNORE_INDEX):
            supervised = labels[start] != IGNORE_INDEX
            text.append(tokenizer.decode(ids[start:index]), style="bold green" if supervised else "dim")
            start = index
    if len(example["input_ids"]) > max_tokens:
        text.append(f" ... ({len(example['input_ids']) - max_tokens} more tokens)", style="italic")
    return text


def _highlight_preference(example: dict[str, Any], tokenizer: PreTrainedTokenizerBase, max_tokens: int) -> Text:
    text = Text(tokenizer.decode(example["prompt_ids"][-max_tokens:]), style="dim")
    if "chosen_ids" in example:
        answers = [("chosen", example["chosen_ids"], "bold green"), ("rejected", example["rejected_ids"], "bold red")]
    elif "label" not in example:  # a prompt the policy answers while it trains (online RL)
        answers = []
    else:
        desirable = example["label"]
        answers = [("desirable" if desirable else "undesirable", example["completion_ids"],
                    "bold green" if desirable else "bold red")]
    for name, ids, style in answers:
        text.append(f"\n[{name}] ", style="italic")
        text.append(tokenizer.decode(ids[:max_tokens]), style=style)
    return text


def encoded_examples(row: dict[str, Any], encoder: MMEncoder) -> list[tuple[str, dict[str, Any]]]:
    """A multimodal row as the collator encodes it (media tokens expanded): one example, or the chosen and
    the rejected conversation of a ranking row."""
    item = from_row(row)
    if isinstance(item, MediaPreference):
        chosen, rejected = encoder.encode_pair(item)
        return [("chosen", vars(chosen)), ("rejected", vars(rejected))]
    if isinstance(item, LabeledConversation):  # a KTO row: its last answer, labeled
        prompt, answer = split_answer(item.conversation)
        [labeled] = encoder.encode_answers(prompt, [answer])
        return [("desirable" if item.desirable else "undesirable", vars(labeled))]
    return [("", vars(encoder.encode(item)))]


def print_data_report(console: Console, prepared: PreparedData, tokenizer: PreTrainedTokenizerBase,
                      template_name: str, examples: int = 1) -> None:
    """What the run trains on: the report, then the first examples highlighted (multimodal rows encoded
    as their collator will encode them)."""
    console.print(f"[bold]data[/bold] (stage `{prepared.report.stage}`, template `{template_name}`)")
    for level, line in prepared.report.lines():
        shown = escape(line)  # rows, file names and template text may hold brackets
        console.print(f"  [bold yellow]warning:[/bold yellow] {shown}" if level == "warn" else f"  {shown}",
                      highlight=False)
    if not isinstance(prepared.train, Dataset):  # streaming: nothing is materialised yet
        return
    for index in range(min(examples, len(prepared.train))):
        row = prepared.train[index]
        shown = [("", row)]
        if ROW_COLUMN in row:
            if prepared.collator is None:
                continue
            shown = encoded_examples(row, prepared.collator.encoder)
        for label, example in shown:
            console.print(f"  example {index + 1}{' ' + label if label else ''} ([bold green]supervised[/bold green], "
                          "[dim]not supervised[/dim]):")
            console.print(highlight_example(example, tokenizer), highlight=False)


def plot_lengths(dataset: Dataset, lengths: dict[int, int], cutoff_len: int, out_path: Path) -> Path:
    """Histogram of example lengths before truncation (`lengths`: length -> examples, from the report) and
    supervised tokens per row, with cutoff_len marked: what lies right of the line is cut."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    legend = "tokens per example before truncation"
    if not lengths:  # a stage whose report does not count them: the rows as tokenized
        lengths, legend = dict(Counter(len(ids) for ids in dataset["input_ids"])), "tokens per row"
    supervised = [sum(label != IGNORE_INDEX for label in labels) for labels in dataset["labels"]]
    figure, axes = plt.subplots(figsize=(7, 4))
    bins = min(50, max(10, len(lengths)))
    axes.hist(list(lengths), weights=list(lengths.values()), bins=bins, alpha=0.7, label=legend, color="#137")
    axes.hist(supervised, bins=bins, alpha=0.6, label="supervised tokens per row", color="#4a4")
    axes.axvline(cutoff_len, color="#c33", linestyle="--", label=f"cutoff_len {cutoff_len}")
    axes.set_xlabel("tokens")
    axes.set_ylabel("rows")
    axes.legend()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return out_path
