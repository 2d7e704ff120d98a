"""Load tokenizers and causal LMs from a resolved local folder (or a hub id when online)."""

import logging
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from lmforge.config import LmforgeConfig
from lmforge.errors import ModelError
from lmforge.hub.resolve import resolve_model_path

logger = logging.getLogger(__name__)


def model_path(cfg: LmforgeConfig) -> str:
    if not cfg.model.model_name_or_path:
        raise ModelError("set `model_name_or_path` (a local folder, `builtin:NAME` or a hub id)")
    return resolve_model_path(cfg.model.model_name_or_path)


def load_tokenizer(cfg: LmforgeConfig, path: str | None = None) -> PreTrainedTokenizerBase:
    path = path or model_path(cfg)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            path, trust_remote_code=cfg.model.trust_remote_code, use_fast=cfg.model.use_fast_tokenizer,
            revision=cfg.model.model_revision, cache_dir=cfg.model.cache_dir)
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot load the tokenizer of {path}: {err}") from None
    if tokenizer.pad_token is None:  # padding is masked out; any known token will do
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def inference_dtype(cfg: LmforgeConfig) -> torch.dtype:
    if cfg.model.infer_dtype != "auto":
        return getattr(torch, cfg.model.infer_dtype)
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load_causal_lm(cfg: LmforgeConfig, *, dtype: torch.dtype, path: str | None = None) -> Any:
    """The base model. Training loads float32 weights; mixed precision is the Trainer's job."""
    path = path or model_path(cfg)
    kwargs: dict[str, Any] = dict(trust_remote_code=cfg.model.trust_remote_code,
                                  revision=cfg.model.model_revision, cache_dir=cfg.model.cache_dir)
    try:
        config = AutoConfig.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot read the model config of {path}: {err}") from None
    try:
        model = AutoModelForCausalLM.from_pretrained(path, config=config, dtype=dtype, **kwargs)
    except ValueError as err:
        if "Unrecognized configuration class" in str(err):
            raise ModelError(f"{path} ({config.model_type}) is not a causal language model; lmforge "
                             "trains decoder-only text models for now") from None
        raise
    logger.info("loaded %s as %s (%s)", path, type(model).__name__, dtype)
    return model


def load_reward_model(cfg: LmforgeConfig, tokenizer: PreTrainedTokenizerBase, *, dtype: torch.dtype) -> Any:
    """The base model with a freshly initialised scalar head (`*ForSequenceClassification`, 1 label)."""
    from transformers import AutoModelForSequenceClassification

    path = model_path(cfg)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=1, dtype=dtype, trust_remote_code=cfg.model.trust_remote_code,
            revision=cfg.model.model_revision, cache_dir=cfg.model.cache_dir)
    except ValueError as err:
        raise ModelError(f"{path} has no sequence-classification form for a reward model: {err}") from None
    model.config.pad_token_id = tokenizer.pad_token_id  # the head reads the last non-pad token
    return model
