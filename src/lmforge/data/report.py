"""What a run trains on: counts, shares and warnings, printed before step 1."""

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class DataReport:
    stage: str = "sft"
    rows_per_dataset: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # "location: reason" of rows skipped (on_bad_row: skip)
    examples: int = 0
    eval_examples: int = 0
    eval_rows_per_dataset: dict[str, int] = field(default_factory=dict)  # eval_on_each_dataset: rows in order
    truncated: int = 0
    dropped_empty: list[str] = field(default_factory=list)  # examples left with no supervised token
    tokens: int = 0
    supervised_tokens: int = 0
    answers: int = 0  # supervised spans (assistant turns)
    answers_without_end: int = 0  # supervised spans not ending in an end-of-turn token
    split_conversations: int = 0  # conversations trained as several examples (`template: auto`, docs/templates.md)
    dropped_tail_tokens: int = 0  # pt packing: the incomplete last block
    packed_rows: int | None = None
    packing_efficiency: float | None = None
    from_cache: str | None = None
    multimodal: bool = False  # rows encoded per batch: `tokens` counts their text only
    media_items: dict[str, int] = field(default_factory=dict)  # kind -> images/videos/audios in the rows
    text_only: str | None = None  # why a multimodal model's run keeps no media
    media_tokens: dict[int, int] = field(default_factory=dict)  # media tokens per example with media -> examples
    over_cutoff: list[str] = field(default_factory=list)  # "source (N media tokens)": more than cutoff_len alone
    lengths: dict[int, int] = field(default_factory=dict)  # tokens per example before truncation -> examples

    @property
    def supervised_share(self) -> float:
        return self.supervised_tokens / max(self.tokens, 1)

    def count_lengths(self, lengths: list[int]) -> None:
        for length in lengths:
            self.lengths[length] = self.lengths.get(length, 0) + 1

    def count_media_tokens(self, source: str, tokens: int, cutoff_len: int) -> None:
        self.media_tokens[tokens] = self.media_tokens.get(tokens, 0) + 1
        if tokens >= cutoff_len:
            self.over_cutoff.append(f"{source} ({tokens:,} media tokens)")

    def length_figures(self, counts: dict[int, int] | None = None) -> dict[str, int]:
        """min, median, p90, p99 and max of the lengths before truncation (nearest rank), or of `counts`
        (value -> examples); {} when not counted."""
        counts = self.lengths if counts is None else counts
        if not counts:
            return {}
        ordered = sorted(counts.items())
        count = sum(counts.values())

        def at(share: float) -> int:
            rank, seen = max(1, -(-count * share // 1)), 0  # ceil(count * share), at least the first
            for length, examples in ordered:
                seen += examples
                if seen >= rank:
                    return length
            return ordered[-1][0]

        return {"min": ordered[0][0], "median": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": ordered[-1][0]}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DataReport":
        lengths = {int(length): examples for length, examples in data.get("lengths", {}).items()}  # JSON keys
        media = {int(tokens): examples for tokens, examples in data.get("media_tokens", {}).items()}
        return cls(**{**data, "lengths": lengths, "media_tokens": media})

    def lines(self) -> list[tuple[str, str]]:
        """(level, text) pairs; level is info or warn."""
        rows = ", ".join(f"{name}: {count}" for name, count in self.rows_per_dataset.items())
        out = [("info", f"rows per dataset: {rows}"),
               ("info", f"examples: {self.examples} train, {self.eval_examples} eval; "
                        f"truncated to cutoff_len: {self.truncated}"),
               ("info", f"{'text tokens' if self.multimodal else 'tokens'}: {self.tokens:,}, supervised: "
                        f"{self.supervised_tokens:,} ({self.supervised_share:.1%})")]
        if figures := self.length_figures():
            counted = sum(self.lengths.values())
            out.append(("info", "tokens per example before truncation: "
                                + ", ".join(f"{name} {value:,}" for name, value in figures.items())
                                + f"; cutoff_len truncates {self.truncated} of {counted} "
                                  f"({self.truncated / counted:.1%})"))
        if self.multimodal:
            media = ", ".join(f"{count} {kind}" for kind, count in self.media_items.items()) or "none"
            out.append(("info", f"media: {media}; text tokens count each placeholder as written: the model's "
                                "media tokens are added when batches are built (the training summary counts them)"))
        if figures := self.length_figures(self.media_tokens):
            out.append(("info", "media tokens per example with media: "
                                + ", ".join(f"{name} {value:,}" for name, value in figures.items())))
        if self.over_cutoff:
            out.append(("warn", f"{len(self.over_cutoff)} examples have as many media tokens as cutoff_len or more, "
                                "so their batches fail (raise cutoff_len, or lower image_max_pixels / video_maxlen "
                                "/ video_max_pixels); first: " + ", ".join(self.over_cutoff[:3])))
        if self.text_only:
            out.append(("warn", f"{self.text_only}: this run trains on text only"))
        if self.packed_rows is not None:
            out.append(("info", f"packing: {self.examples} examples in {self.packed_rows} rows, "
                                f"efficiency {self.packing_efficiency:.1%} (non-pad / total slots)"))
        if self.dropped_tail_tokens:
            out.append(("info", f"pt: the last {self.dropped_tail_tokens} tokens did not fill a block and are unused"))
        if self.skipped:
            out.append(("warn", f"skipped {len(self.skipped)} bad rows (on_bad_row: skip); first: "
                                + " | ".join(self.skipped[:3])))
        if self.dropped_empty:
            out.append(("warn", f"dropped {len(self.dropped_empty)} examples left with no supervised token after "
                                "truncation (raise cutoff_len); first: " + ", ".join(self.dropped_empty[:3])))
        if self.answers_without_end:
            out.append(("warn", f"{self.answers_without_end} of {self.answers} supervised answers do not end with "
                                "an end-of-turn token: the model will not learn to stop there (truncated answers, "
                                "or a template without an end token)"))
        if self.split_conversations:
            out.append(("info", f"{self.split_conversations} conversations are trained as several examples: the "
                                "tokenizer's chat template writes earlier turns differently from the turn it "
                                "generates, and each answer is trained in its own generation-time context "
                                "(`tokens` counts every example; `mask_history: true` trains one per conversation)"))
        if self.from_cache:
            out.append(("info", f"reused preprocessed data from {self.from_cache}"))
        return out
