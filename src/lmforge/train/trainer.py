"""The transformers Trainer, counting the tokens it trains on so throughput is measured, not guessed."""

import math
from dataclasses import astuple, dataclass
from typing import Any

import torch
from transformers import Trainer

from lmforge.data.labels import IGNORE_INDEX
from lmforge.errors import ModelError
from lmforge.model.packed_attention import packed_sequence_kwargs, use_packed_attention
from lmforge.train.loss import chunked_causal_lm_loss, plain_head_parts
from lmforge.train.token_losses import TokenLoss, token_loss_sum

# a packed batch of these keys only reaches the language model's attention (no vision/audio tower)
TEXT_KEYS = frozenset({"input_ids", "labels", "position_ids", "use_cache"})


@dataclass
class TokenCounts:
    input_tokens: int = 0  # every position computed, padding included
    non_pad_tokens: int = 0
    supervised_tokens: int = 0  # positions whose label enters the loss
    samples: int = 0  # training examples, not packed rows
    attention_pairs: int = 0  # sum of length^2 over the trained sequences (their attention's FLOPs)

    def attention_context(self) -> float:
        """The mean number of keys a trained token attends to (`flops.packed_context` over every sequence)."""
        return self.attention_pairs / self.non_pad_tokens if self.non_pad_tokens else 0.0


def _attention_pairs(inputs: dict[str, Any]) -> int:
    """Sum of length^2 over a batch's sequences: one per row of a padded batch; a packed batch without its
    collator's count is split where positions restart (its padding tail counts as one more sequence)."""
    if "attention_mask" in inputs and inputs["attention_mask"].dim() == 2:
        return int((inputs["attention_mask"].sum(1) ** 2).sum())
    if "position_ids" in inputs and inputs["position_ids"].dim() == 2:
        cu = packed_sequence_kwargs(inputs["position_ids"])["cu_seq_lens_q"].long()
        return int(((cu[1:] - cu[:-1]) ** 2).sum())
    return 0


def counts_of_all_processes(counts: TokenCounts, accelerator: Any) -> TokenCounts:
    """Every process counts its own batches; the run's throughput is their sum (a collective call:
    every process must make it)."""
    if accelerator.num_processes == 1:
        return counts
    mine = torch.tensor(astuple(counts), dtype=torch.int64, device=accelerator.device)
    return TokenCounts(*(int(value) for value in accelerator.reduce(mine, reduction="sum").tolist()))


class LmforgeTrainer(Trainer):
    def __init__(self, *args: Any, chunked_loss: bool | None = None, packed_attention: bool = True,
                 token_loss: TokenLoss | None = None, ref_model: Any = None,
                 eval_parts: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """`packed_attention`: this model attends within each packed sequence (`model.packed_attention`) where
        it uses SDPA; context parallelism keeps "sdpa", the one implementation transformers splits.
        `token_loss`: a token-weighted loss (DFT, EAFT, ASFT); ASFT's reference is `ref_model`, or this model
        with its adapter disabled. `eval_parts`: each eval dataset on its own (`eval_on_each_dataset`), evaluated
        after the whole eval set as `eval_NAME_*` metrics."""
        super().__init__(*args, **kwargs)
        self.eval_parts = eval_parts or {}
        self._part_metrics: dict[str, float] = {}
        self.token_loss = token_loss
        self.ref_model = (self.accelerator.prepare_model(ref_model, evaluation_mode=True)
                          if ref_model is not None else None)
        self.token_counts = TokenCounts()
        parallelism = getattr(self.accelerator, "parallelism_config", None)
        if packed_attention and not (parallelism is not None and parallelism.cp_enabled):
            use_packed_attention(self.model)
        # Sharded engines (DeepSpeed ZeRO, FSDP) gather the head's weight only inside its own forward; the
        # chunked loss recomputes the head during backward, when the weight is partitioned again.
        sharded = self.is_deepspeed_enabled or self.is_fsdp_enabled
        parts = plain_head_parts(self.model) if chunked_loss is not False and not sharded else None
        if chunked_loss and parts is None:
            reason = ("DeepSpeed/FSDP shard the output head" if sharded else
                      f"{type(self.model).__name__} ({self.model.config.model_type}) has scaled or capped logits")
            raise ModelError(f"`chunked_loss: true` needs a plain, unsharded output head; {reason}: remove the key")
        self._head_parts = parts
        self.encoder_decoder = bool(getattr(getattr(self.model, "config", None), "is_encoder_decoder", False))

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Evaluations also report the perplexity: the eval loss is a mean token cross-entropy. `evaluate()`
        returns this same dict, so eval_results.json, the log and the summary all get it."""
        if "eval_loss" in logs:
            logs["eval_perplexity"] = math.exp(min(logs["eval_loss"], 700.0))  # exp overflows past ~709
            logs.update(self._part_metrics)  # in place, as above: the evaluation's own metrics get them too
            self._part_metrics = {}
        super().log(logs, start_time)

    def evaluate(self, eval_dataset: Any = None, ignore_keys: list[str] | None = None,
                 metric_key_prefix: str = "eval") -> dict[str, float]:
        """The whole eval set as transformers evaluates it (`eval_loss`: early stopping and the plots read it),
        plus, with `eval_parts`, each eval dataset's own loss as `eval_NAME_loss` in the same log entry."""
        if eval_dataset is None:
            for name, part in self.eval_parts.items():
                loop = self.evaluation_loop(self.get_eval_dataloader(part), f"Evaluation of {name}",
                                            ignore_keys=ignore_keys, metric_key_prefix=f"{metric_key_prefix}_{name}")
                self._part_metrics.update(loop.metrics)
        return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)

    def compute_loss(self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        real_tokens = inputs.pop("num_real_tokens", None)  # packed batches have no attention mask
        examples = inputs.pop("num_examples", None)  # a packed row holds several examples
        pairs = inputs.pop("num_attention_pairs", None)
        if "position_ids" in inputs and "attention_mask" not in inputs:
            # transformers derives the block-diagonal mask of packed rows from position_ids only when
            # no KV cache is built; with the config's default use_cache=True examples would attend
            # to each other.
            inputs["use_cache"] = False
            if inputs["position_ids"].dim() == 2 and set(inputs) <= TEXT_KEYS:
                # attention within each packed sequence instead of a masked whole row (model.packed_attention)
                inputs.update(packed_sequence_kwargs(inputs["position_ids"]))
        if model.training:
            counts = self.token_counts
            counts.input_tokens += inputs["input_ids"].numel()
            counts.samples += int(examples) if examples is not None else inputs["input_ids"].shape[0]
            if real_tokens is not None:
                counts.non_pad_tokens += int(real_tokens)
            elif "attention_mask" in inputs:
                counts.non_pad_tokens += int(inputs["attention_mask"].sum())
            counts.attention_pairs += int(pairs) if pairs is not None else _attention_pairs(inputs)
            if "labels" in inputs and self.encoder_decoder:  # decoder positions: every label is predicted
                supervised = int((inputs["labels"] != IGNORE_INDEX).sum())
                counts.input_tokens += inputs["labels"].numel()
                counts.non_pad_tokens += supervised
                counts.supervised_tokens += supervised
            elif "labels" in inputs:  # the first label of a row is never predicted (causal shift)
                counts.supervised_tokens += int((inputs["labels"][:, 1:] != IGNORE_INDEX).sum())
        num_items = kwargs.get("num_items_in_batch", args[1] if len(args) > 1 else None)
        if self.token_loss is not None and "labels" in inputs:
            return_outputs = kwargs.get("return_outputs", args[0] if args else False)  # evaluation wants logits
            loss, outputs = self._token_loss(model, inputs, num_items, return_outputs)
            return (loss, outputs) if return_outputs else loss
        if self._head_parts is not None and model.training and "labels" in inputs and num_items is not None:
            return self._chunked_loss(inputs, num_items)
        return super().compute_loss(model, inputs, *args, **kwargs)

    def _scaled(self, loss: Any) -> Any:
        """A loss normalised by the batch's supervised tokens, scaled as `Trainer.compute_loss` scales it."""
        if self.args.average_tokens_across_devices and self.model_accepts_loss_kwargs:
            return loss * self.accelerator.num_processes
        return loss

    def _chunked_loss(self, inputs: dict[str, Any], num_items_in_batch: Any) -> Any:
        """Same value and gradients as the model's own loss (see `lmforge.train.loss`)."""
        decoder, head = self._head_parts
        labels = inputs.pop("labels")
        with self.accelerator.autocast():  # the decoder is called directly, outside the forward accelerate wraps
            loss = chunked_causal_lm_loss(decoder, head, inputs, labels, num_items_in_batch)
        return self._scaled(loss)

    def _token_loss(self, model: Any, inputs: dict[str, Any], num_items: Any, with_outputs: bool) -> tuple[Any, Any]:
        """DFT/EAFT (chunked where the head is plain) or ASFT (whole logits beside the reference's), summed over
        supervised tokens and divided by their count in the whole batch (this batch's when evaluating); and the
        model's outputs when `with_outputs` (whole logits then)."""
        labels = inputs.pop("labels")
        shift = 0 if self.encoder_decoder else 1  # a causal model's position t predicts label t+1
        count = num_items if num_items is not None else (labels[:, shift:] != IGNORE_INDEX).sum().clamp(min=1)
        if self._head_parts is not None and not self.token_loss.needs_reference and not with_outputs:
            decoder, head = self._head_parts
            with self.accelerator.autocast():
                loss = chunked_causal_lm_loss(decoder, head, inputs, labels, count, self.token_loss)
            return self._scaled(loss), None
        outputs = model(**inputs)
        logits = outputs.logits
        width = logits.shape[-1]
        rows, targets = logits[:, :logits.shape[1] - shift].reshape(-1, width), labels[:, shift:].reshape(-1)
        reference = None
        if self.token_loss.needs_reference:
            with torch.no_grad():
                if self.ref_model is not None:
                    reference = self.ref_model(**inputs).logits
                else:  # a peft model: the base is the reference
                    with self.accelerator.unwrap_model(model).disable_adapter():
                        reference = model(**inputs).logits
            reference = reference[:, :reference.shape[1] - shift].reshape(-1, width)
        return self._scaled(token_loss_sum(self.token_loss, rows, targets, reference) / count), outputs
