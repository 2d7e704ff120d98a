"""Scores of generated answers against their labels: BLEU-4 (sacrebleu) and ROUGE-1/2/L (rouge-score).

Tokens: both libraries see the same ones, from sacrebleu's `zh` tokenizer. It makes every CJK
character a token of its own and splits other text by sacrebleu's standard `13a` rules (punctuation
apart from words), so Chinese needs no word segmenter and a score never depends on one. Matching is
case-sensitive. Each score is the mean over labelled rows of that row's score, times 100 (as
LLaMA-Factory reports them): sentence BLEU with sacrebleu's defaults (exponential smoothing, n-gram
orders up to 4, or the hypothesis length when shorter) and ROUGE F1 (rougeL: longest common subsequence).
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lmforge.config import LmforgeConfig
from lmforge.errors import DataError
from lmforge.infer.engine import Engine
from lmforge.infer.predict import run_predict

RESULTS_FILE = "predict_results.json"
SCORE_NAMES = ("bleu-4", "rouge-1", "rouge-2", "rouge-l")


class MetricTokenizer:
    """sacrebleu's `zh` tokenization behind rouge-score's tokenizer interface."""

    def __init__(self) -> None:
        from sacrebleu.tokenizers.tokenizer_zh import TokenizerZh

        self._split = TokenizerZh()

    def tokenize(self, text: str) -> list[str]:
        return self._split(text).split()


def similarity_scores(predictions: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
    """Mean BLEU-4 and ROUGE-1/2/L F1 (0..100) of each prediction against its label."""
    # imported here: every training run imports this module, and only prediction scores (rouge-score pulls nltk)
    from rouge_score.rouge_scorer import RougeScorer
    from sacrebleu import sentence_bleu

    if len(predictions) != len(labels) or not labels:
        raise ValueError(f"need as many predictions as labels, at least one (got {len(predictions)}, {len(labels)})")
    scorer = RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=MetricTokenizer())
    totals = dict.fromkeys(SCORE_NAMES, 0.0)
    for prediction, label in zip(predictions, labels, strict=True):
        totals["bleu-4"] += sentence_bleu(prediction, [label], tokenize="zh").score
        rouge = scorer.score(label, prediction)  # (target, prediction)
        for name, key in (("rouge-1", "rouge1"), ("rouge-2", "rouge2"), ("rouge-l", "rougeL")):
            totals[name] += 100 * rouge[key].fmeasure
    return {name: round(min(total / len(labels), 100.0), 4) for name, total in totals.items()}


def read_predictions(path: Path) -> tuple[list[str], list[str], int]:
    """(predictions, labels, unlabelled row count) from generated_predictions.jsonl; with several
    candidates per row the first is scored."""
    predictions, labels, unlabelled = [], [], 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path} line {number} is not JSON ({err.msg}); "
                            "rerun the prediction to repair it") from None
        if record.get("label") is None:
            unlabelled += 1
            continue
        predict = record["predict"]
        predictions.append(predict[0] if isinstance(predict, list) else predict)
        labels.append(record["label"])
    return predictions, labels, unlabelled


def write_predict_results(path: Path, runtime_s: float, generated: int) -> dict[str, Any]:
    """Score the predictions in `path` (every row, also those an earlier run wrote) and write
    `predict_results.json` beside it. Runtime and throughput are this run's."""
    predictions, labels, unlabelled = read_predictions(path)
    results: dict[str, Any] = {}
    if labels:
        results.update({f"predict_{name}": value for name, value in similarity_scores(predictions, labels).items()})
    results.update({
        "predict_samples": len(labels) + unlabelled,
        "predict_unlabelled_samples": unlabelled,
        "predict_runtime": round(runtime_s, 4),
        "predict_samples_per_second": round(generated / runtime_s, 3) if runtime_s > 0 else 0.0,
    })
    (path.parent / RESULTS_FILE).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


def results_table(results: dict[str, Any]) -> Table:
    table = Table(title="prediction results", show_header=False)
    for name in SCORE_NAMES:
        if f"predict_{name}" in results:
            table.add_row(name.upper(), f"{results[f'predict_{name}']:.2f}")
    table.add_row("rows", f"{results['predict_samples']}"
                  + (f" ({results['predict_unlabelled_samples']} without a label, not scored)"
                     if results["predict_unlabelled_samples"] else ""))
    table.add_row("runtime", f"{results['predict_runtime']:.1f} s")
    table.add_row("samples/s", f"{results['predict_samples_per_second']:.2f}")
    return table


def predict_and_score(cfg: LmforgeConfig, engine: Engine, console: Console) -> dict[str, Any]:
    """Answer what generated_predictions.jsonl lacks, score the whole file, print and return the results."""
    run = run_predict(cfg, engine, lambda done, total: console.print(f"predicted {done}/{total}"))
    console.print(f"predictions written to {run.path}", markup=False)
    results = write_predict_results(run.path, run.runtime_s, run.generated)
    console.print(results_table(results))
    console.print(f"scores written to {run.path.parent / RESULTS_FILE}", markup=False)
    return results
