"""ORPO and SimPO: preference losses without a reference model, on lmforge's tokenized pairs.

trl keeps these in `trl.experimental` behind a text-only tokenization path that would re-tokenize
our template-encoded rows; the losses themselves are a few lines, written here on the Trainer.

- SimPO (Meng et al., 2024): -log sigmoid(beta * (avg logp(chosen) - avg logp(rejected)) - gamma),
  plus `pref_ftx` x NLL of the chosen answer.
- ORPO (Hong et al., 2024): NLL(chosen) - beta * log sigmoid(log odds(chosen) - log odds(rejected)),
  with odds computed from length-averaged log-probabilities.

The answers' log-probabilities come from the hidden states chunk by chunk (`loss.chunked_answer_logps`)
where the output head is plain (as the SFT loss does, `chunked_loss`), never as whole logits: 2 x batch
rows x length x vocabulary floats, and as much again for their log-softmax and its gradient.
"""

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers import Trainer, TrainingArguments

from lmforge.config import LmforgeConfig
from lmforge.data.dataset import PreparedData
from lmforge.data.labels import IGNORE_INDEX
from lmforge.train.loss import chunked_answer_logps, plain_head_parts


@dataclass
class PairCollator:
    """Rows 0..B-1 are prompt+chosen, rows B..2B-1 prompt+rejected; only answers are labelled."""

    pad_token_id: int

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        rows, labels = [], []
        for key in ("chosen_ids", "rejected_ids"):
            for feature in features:
                rows.append(feature["prompt_ids"] + feature[key])
                labels.append([IGNORE_INDEX] * len(feature["prompt_ids"]) + feature[key])
        width = max(map(len, rows))
        batch = {"input_ids": torch.full((len(rows), width), self.pad_token_id),
                 "attention_mask": torch.zeros((len(rows), width), dtype=torch.long),
                 "labels": torch.full((len(rows), width), IGNORE_INDEX)}
        for index, (row, label) in enumerate(zip(rows, labels, strict=True)):
            batch["input_ids"][index, : len(row)] = torch.tensor(row)
            batch["attention_mask"][index, : len(row)] = 1
            batch["labels"][index, : len(row)] = torch.tensor(label)
        return batch


def answer_logps(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of answer-token log-probabilities, answer length) per row."""
    logits, labels = logits[:, :-1].float(), labels[:, 1:]
    mask = labels != IGNORE_INDEX
    per_token = torch.gather(logits.log_softmax(-1), 2, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (per_token * mask).sum(-1), mask.sum(-1).clamp(min=1)


class ReferenceFreeTrainer(Trainer):
    def __init__(self, *args: Any, loss: str, beta: float, gamma: float, ftx: float,
                 chunked_loss: bool | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loss_name, self.beta, self.gamma, self.ftx = loss, beta, gamma, ftx
        self._metrics: dict[str, list[float]] = defaultdict(list)
        # sharded engines gather the head's weight only inside its own forward (see LmforgeTrainer)
        sharded = self.is_deepspeed_enabled or self.is_fsdp_enabled
        self._head_parts = plain_head_parts(self.model) if chunked_loss is not False and not sharded else None

    @classmethod
    def create(cls, cfg: LmforgeConfig, model: Any, tokenizer: Any, prepared: PreparedData,
               kwargs: dict[str, Any]) -> "ReferenceFreeTrainer":
        """A multimodal run's `prepared.collator` lays its ranking rows out as `PairCollator` does (plus media)."""
        ft = cfg.finetuning
        kwargs = {**kwargs, "prediction_loss_only": True}  # evaluation needs the loss, not 2B x L x V logits
        mm = prepared.collator
        return cls(model=model, args=TrainingArguments(**kwargs), train_dataset=prepared.train,
                   eval_dataset=prepared.evaluation, data_collator=mm or PairCollator(tokenizer.pad_token_id),
                   processing_class=mm.encoder.processor if mm else tokenizer, loss=ft.pref_loss,
                   beta=ft.pref_beta, gamma=ft.simpo_gamma, ftx=ft.pref_ftx, chunked_loss=cfg.training.chunked_loss)

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     **_: Any) -> Any:
        labels = inputs.pop("labels")
        if self._head_parts is not None and set(inputs) <= {"input_ids", "attention_mask"}:  # text rows
            decoder, head = self._head_parts
            with self.accelerator.autocast():  # the decoder is called outside accelerate's autocast-wrapped forward
                total, length = chunked_answer_logps(decoder, head, inputs, labels)
            outputs: Any = {"answer_logps": total}
        else:
            outputs = model(**inputs, use_cache=False)
            total, length = answer_logps(outputs.logits, labels)
        half = total.shape[0] // 2
        average = total / length
        nll_chosen = -average[:half]
        if self.loss_name == "simpo":
            margin = self.beta * (average[:half] - average[half:]) - self.gamma
            loss = -F.logsigmoid(margin) + self.ftx * nll_chosen
        else:  # orpo
            log_odds = (average[:half] - average[half:]) - (
                torch.log1p(-average[:half].exp().clamp(max=1 - 1e-6))
                - torch.log1p(-average[half:].exp().clamp(max=1 - 1e-6)))
            margin = log_odds
            loss = nll_chosen - self.beta * F.logsigmoid(log_odds)
        prefix = "" if model.training else "eval_"
        self._metrics[f"{prefix}rewards/accuracies"].append((margin > 0).float().mean().item())
        self._metrics[f"{prefix}rewards/margins"].append(margin.mean().item())
        loss = loss.mean()
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        prefix = "eval_" if any(key.startswith("eval_") for key in logs) else ""
        for key in [k for k in self._metrics if k.startswith(prefix) and (prefix or not k.startswith("eval_"))]:
            values = self._metrics.pop(key)
            logs[key] = sum(values) / len(values)
        super().log(logs, *args, **kwargs)
