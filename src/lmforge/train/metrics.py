"""Evaluation metrics computed without keeping whole logits: argmax first, compare later."""

from typing import Any

import torch
from transformers import EvalPrediction

from lmforge.data.labels import IGNORE_INDEX


def _argmax_logits(logits: Any, labels: torch.Tensor) -> torch.Tensor:
    """Keep the predicted token per position instead of the (batch x length x vocab) logits."""
    if isinstance(logits, tuple):
        logits = logits[0]
    return logits.argmax(dim=-1)


def _token_accuracy(prediction: EvalPrediction) -> dict[str, float]:
    predicted, labels = prediction.predictions[:, :-1], prediction.label_ids[:, 1:]  # causal shift
    mask = labels != IGNORE_INDEX
    return {"accuracy": float((predicted[mask] == labels[mask]).mean()) if mask.any() else float("nan")}


def token_accuracy_metrics() -> dict[str, Any]:
    """Trainer keyword arguments for supervised-token accuracy (`compute_accuracy: true`)."""
    return {"compute_metrics": _token_accuracy, "preprocess_logits_for_metrics": _argmax_logits}

