"""`lmforge predict`: generate answers for a dataset's prompts into jsonl, incrementally and resumably.

Each conversation's last assistant message (if any) is the label; the messages before it are the
prompt. Results are appended one batch at a time, so an interrupted run loses at most one batch;
running again skips the rows already written (checked by their source location).
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lmforge.config import LmforgeConfig
from lmforge.config.data import DataGroup
from lmforge.data.conversation import Conversation
from lmforge.data.loading import load_conversations
from lmforge.data.registry import resolve_datasets
from lmforge.data.templates.template import Message
from lmforge.errors import ConfigError, DataError
from lmforge.infer.engine import Engine

PREDICTIONS_FILE = "generated_predictions.jsonl"


@dataclass(frozen=True)
class PredictionRun:
    path: Path  # generated_predictions.jsonl
    total: int  # rows in the data
    generated: int  # rows this run answered (the others were already in the file)
    runtime_s: float


def prediction_config(cfg: LmforgeConfig) -> LmforgeConfig:
    """`cfg` with LLaMA-Factory's `per_device_eval_batch_size` as the generation batch, unless
    `infer_batch_size` is set too."""
    if ("per_device_eval_batch_size" not in cfg.training.model_fields_set
            or "infer_batch_size" in cfg.generation.model_fields_set):
        return cfg
    generation = cfg.generation.model_copy(update={"infer_batch_size": cfg.training.per_device_eval_batch_size})
    return cfg.model_copy(update={"generation": generation})


def prediction_inputs(data: DataGroup) -> list[Conversation]:
    """The conversations to answer: `eval_dataset`, else `dataset`."""
    names = data.eval_dataset or data.dataset
    if not names:
        raise ConfigError("`lmforge predict` needs `eval_dataset` or `dataset` (the prompts to answer)")
    return [conversation for spec in resolve_datasets(names, data.dataset_dir)
            for conversation in load_conversations(spec, max_samples=data.max_samples,
                                                   on_bad_row=data.on_bad_row).conversations]


def predictions_path(cfg: LmforgeConfig) -> Path:
    if not cfg.training.output_dir:
        raise ConfigError("`lmforge predict` needs `output_dir`, the folder generated_predictions.jsonl goes to")
    return Path(cfg.training.output_dir) / PREDICTIONS_FILE


def _done_rows(path: Path, conversations: list[Conversation]) -> int:
    """How many rows an earlier run wrote; a torn last line (interrupted write) is dropped."""
    if not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    done = 0
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            break
        if done >= len(conversations) or record.get("source") != conversations[done].source:
            raise DataError(f"{path} holds predictions for other data (row {done + 1}: {record.get('source')}); "
                            "move it away or set `overwrite_output_dir: true`")
        done += 1
    if done < len(lines):  # rewrite without the torn tail
        path.write_text("".join(lines[:done]), encoding="utf-8")
    return done


def _split_label(conversation: Conversation) -> tuple[list[Message], str | None]:
    """(prompt messages, label): the label is the last message when it is the assistant's."""
    messages = conversation.messages
    if messages and messages[-1].role == "assistant":
        return messages[:-1], messages[-1].content
    return messages, None


def run_predict(cfg: LmforgeConfig, engine: Engine,
                progress: Callable[[int, int], None] | None = None) -> PredictionRun:
    """Answer every prompt not answered yet into the jsonl. `progress(done, total)` is called after each batch."""
    start_time = time.perf_counter()
    conversations = prediction_inputs(cfg.data)
    path = predictions_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    if cfg.training.overwrite_output_dir and path.exists():
        path.unlink()
    done = _done_rows(path, conversations)
    if cfg.training.generation_config:
        engine.use_generation_config(cfg.training.generation_config)
    batch = cfg.generation.infer_batch_size
    with path.open("a", encoding="utf-8") as out:
        for start in range(done, len(conversations), batch):
            chunk = conversations[start:start + batch]
            pairs = [_split_label(conversation) for conversation in chunk]
            results = engine.generate([(messages, c.system) for (messages, _), c in zip(pairs, chunk, strict=True)])
            for conversation, (messages, label), candidates in zip(chunk, pairs, results, strict=True):
                texts = [candidate.text for candidate in candidates]
                record = {"source": conversation.source, "prompt": messages[-1].content if messages else "",
                          "predict": texts[0] if len(texts) == 1 else texts, "label": label}
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()  # a finished batch survives an interruption
            if progress is not None:
                progress(min(start + batch, len(conversations)), len(conversations))
    return PredictionRun(path, len(conversations), len(conversations) - done, time.perf_counter() - start_time)
