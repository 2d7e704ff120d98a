"""The trainer of pt and sft: the transformers Trainer on causal-LM examples (packed or padded)."""

from typing import TYPE_CHECKING, Any

from lmforge.config import LmforgeConfig
from lmforge.data.labels import IGNORE_INDEX

if TYPE_CHECKING:
    from lmforge.data.dataset import PreparedData
    from lmforge.train.token_losses import TokenLoss
    from lmforge.train.trainer import LmforgeTrainer


def build_trainer(cfg: LmforgeConfig, model: Any, tokenizer: Any, prepared: "PreparedData",
                  kwargs: dict[str, Any], ref_model: Any = None) -> "LmforgeTrainer":
    """A multimodal run's rows are encoded (and packed) per batch by `prepared.collator`."""
    # the training stack loads when a stage trains, not when the registry is looked up (`lmforge check`)
    from transformers import TrainingArguments

    from lmforge.data.collator import Seq2SeqCollator, SftCollator
    from lmforge.train.metrics import token_accuracy_metrics
    from lmforge.train.padding_free import padding_free_batches
    from lmforge.train.stages import STAGES
    from lmforge.train.trainer import LmforgeTrainer

    accuracy = token_accuracy_metrics() if cfg.finetuning.compute_accuracy and prepared.evaluation else {}
    args = TrainingArguments(**kwargs)
    encoder_decoder = bool(getattr(model.config, "is_encoder_decoder", False))
    mm = prepared.collator
    label_pad = IGNORE_INDEX if cfg.data.ignore_pad_token_for_loss else tokenizer.pad_token_id
    if mm is not None:
        collator = mm
    elif encoder_decoder:
        collator = Seq2SeqCollator(pad_token_id=tokenizer.pad_token_id, label_pad_token_id=label_pad)
    else:
        packed = STAGES.get(cfg.finetuning.stage).data.packing(cfg.data)
        collator = SftCollator(pad_token_id=tokenizer.pad_token_id, label_pad_token_id=label_pad,
                               padding_free=padding_free_batches(cfg, model, packed=packed))
    return LmforgeTrainer(
        model=model, args=args, train_dataset=prepared.train, eval_dataset=prepared.evaluation,
        data_collator=collator, processing_class=mm.encoder.processor if mm else tokenizer,
        chunked_loss=cfg.training.chunked_loss, packed_attention=cfg.model.packed_attention,
        token_loss=token_loss(cfg), ref_model=ref_model, eval_parts=prepared.eval_parts(), **accuracy)


def token_loss(cfg: LmforgeConfig) -> "TokenLoss | None":
    from lmforge.train.token_losses import TokenLoss

    chosen = cfg.finetuning.token_loss()
    return TokenLoss(*chosen) if chosen else None  # type: ignore[arg-type]


def needs_reference(cfg: LmforgeConfig) -> bool:
    """ASFT anchors the model to a reference (`ref_model`, or the base: adapter disabled or a frozen copy)."""
    return bool(cfg.finetuning.use_asft_loss)
