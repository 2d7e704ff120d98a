"""`do_predict` in a training config (LLaMA-Factory's `do_predict` with `predict_with_generate`).

The prompts of `eval_dataset` are answered into `output_dir/generated_predictions.jsonl` batch by
batch (resumable, see `infer.predict`), then the answers are scored against the labels into
`predict_results.json` (see `infer.predict_metrics`). Without training, the model and adapters are
loaded as `lmforge predict` loads them; after training, the trained model answers as it is in memory,
its adapters applied, nothing reloaded.
"""

from typing import Any

from rich.console import Console

from lmforge.config import LmforgeConfig
from lmforge.infer.factory import create_engine
from lmforge.infer.hf_backend import TransformersEngine
from lmforge.infer.predict import prediction_config, predictions_path
from lmforge.infer.predict_metrics import predict_and_score
from lmforge.train.launch import is_main_worker


def predict_without_training(cfg: LmforgeConfig, console: Console) -> dict[str, Any]:
    """`do_predict` alone: the configured model (base + adapters) answers; returns the scores."""
    if not is_main_worker():  # one process writes the predictions
        return {}
    cfg = prediction_config(cfg)
    predictions_path(cfg)  # fail before loading the model when output_dir is missing
    engine = create_engine(cfg)
    try:
        return predict_and_score(cfg, engine, console)
    finally:
        engine.close()


def predict_with_trained_model(cfg: LmforgeConfig, model: Any, tokenizer: Any, console: Console) -> dict[str, Any]:
    """`do_train` and `do_predict`: the model just trained answers (main process only); returns the scores."""
    cfg = prediction_config(cfg)
    model.config.use_cache = True  # training switched the KV cache off; decoding needs it
    engine = TransformersEngine(cfg, model=model, tokenizer=tokenizer)
    try:
        return predict_and_score(cfg, engine, console)
    finally:
        engine.close()
