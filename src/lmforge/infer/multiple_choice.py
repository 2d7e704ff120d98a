"""`lmforge eval`: multiple-choice accuracy on MMLU, CMMLU or C-Eval, as LLaMA-Factory's `eval` command
measures it.

Each question is a conversation rendered by the run's template, as training and chat render one: `n_shot` solved
questions of the subject's dev set (drawn afresh for each question, seeded) as earlier user/assistant turns,
then the question, then the assistant header. The model's answer is whichever of the tokens "A", "B", "C",
"D" gets the largest logit at the last position. Accuracy per subject, per category (mapping.json) and over
all questions; save_dir gets LLaMA-Factory's results.json (each answer) and results.log (the category
scores), and scores.json (the same scores with each subject's).
"""

import inspect
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lmforge.config import LmforgeConfig
from lmforge.config.evaluation import EvaluationGroup
from lmforge.data.eval_tasks import CHOICES, Subject, question_messages
from lmforge.data.templates.encoding import Chat, iter_encode_batch
from lmforge.data.templates.select import run_template
from lmforge.data.templates.template import Template, Thinking
from lmforge.model.loading import inference_dtype, load_base_model, load_tokenizer, with_adapters_merged

AVERAGE = "Average"
CATEGORIES = (AVERAGE, "STEM", "Social Sciences", "Humanities", "Other")  # LLaMA-Factory's order of the scores
DEFAULT_SEED = 42  # LLaMA-Factory's eval seed when the config sets none


@dataclass
class SubjectResult:
    subject: Subject
    predictions: list[str]  # one letter per question of the evaluated split

    @property
    def correct(self) -> list[bool]:
        return [p == q.answer for p, q in zip(self.predictions, self.subject.questions, strict=True)]

    @property
    def accuracy(self) -> float:
        return 100 * sum(self.correct) / len(self.correct) if self.correct else 0.0


@dataclass
class EvalResult:
    subjects: list[SubjectResult]

    def category_scores(self) -> dict[str, float]:
        """Accuracy (%) over the questions of each category with any, `Average` over all, LLaMA-Factory's
        categories in its order first."""
        pooled: dict[str, list[bool]] = {name: [] for name in CATEGORIES}
        for result in self.subjects:
            pooled[AVERAGE] += result.correct
            pooled.setdefault(result.subject.category, []).extend(result.correct)
        return {name: 100 * sum(marks) / len(marks) for name, marks in pooled.items() if marks}

    def score_lines(self) -> str:
        """The scores as LLaMA-Factory prints them and writes results.log."""
        return "\n".join(f"{name:>15}: {score:.2f}" for name, score in self.category_scores().items())


def choice_token_ids(tokenizer: Any) -> list[int]:
    """The token each answer letter ends with, as the answer turn starts it."""
    return [tokenizer.encode(letter, add_special_tokens=False)[-1] for letter in CHOICES]


def subject_prompts(subject: Subject, template: Template, tokenizer: Any, *, lang: str, n_shot: int, seed: int,
                    enable_thinking: Thinking | None = None) -> list[list[int]]:
    """The token ids of each question's prompt, ending with the assistant header. The shots' answers end as
    the template shows them in a conversation's history (no efficient-eos template's eos between shots, as in
    LLaMA-Factory's eval prompts)."""
    draw = random.Random(f"{seed}/{subject.key}")  # the same shots every run, different per subject
    chats = [Chat(question_messages(question, draw.sample(subject.shots, min(n_shot, len(subject.shots))),
                                    subject.name, lang))
             for question in subject.questions]
    return [encoded.flat() for encoded in iter_encode_batch(template, tokenizer, chats, add_generation_prompt=True,
                                                            enable_thinking=enable_thinking)]


@torch.inference_mode()
def answer_letters(model: Any, prompts: Sequence[list[int]], choice_ids: list[int], *, batch_size: int,
                   pad_token_id: int) -> list[str]:
    """The letter whose token has the largest logit after each prompt. Batches are left-padded with position
    ids counted from each row's first token, so a row scores as it would alone."""
    keeps_last = "logits_to_keep" in inspect.signature(model.forward).parameters
    order = sorted(range(len(prompts)), key=lambda index: len(prompts[index]))  # similar lengths pad little
    letters: dict[int, str] = {}
    for start in range(0, len(order), batch_size):
        rows = [prompts[index] for index in order[start:start + batch_size]]
        width = max(len(row) for row in rows)
        ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for number, row in enumerate(rows):
            ids[number, width - len(row):] = torch.tensor(row)
            mask[number, width - len(row):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        extra = {"logits_to_keep": 1} if keeps_last else {}
        logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device),
                       position_ids=positions.to(model.device), use_cache=False, **extra).logits[:, -1]
        picks = logits[:, choice_ids].argmax(-1).tolist()
        letters.update({index: CHOICES[pick] for index, pick in zip(order[start:start + batch_size], picks,
                                                                      strict=True)})
    return [letters[index] for index in range(len(prompts))]


def evaluate(model: Any, tokenizer: Any, template: Template, subjects: list[Subject], group: EvaluationGroup, *,
             seed: int, enable_thinking: Thinking | None = None,
             on_subject: Callable[[SubjectResult], None] | None = None) -> EvalResult:
    """Every subject's answers; `on_subject` hears of each as it is done."""
    choice_ids = choice_token_ids(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0  # masked: any id will do
    results = []
    for subject in subjects:
        prompts = subject_prompts(subject, template, tokenizer, lang=group.lang, n_shot=group.n_shot, seed=seed,
                                  enable_thinking=enable_thinking)
        result = SubjectResult(subject, answer_letters(model, prompts, choice_ids, batch_size=group.batch_size,
                                                       pad_token_id=pad))
        results.append(result)
        if on_subject is not None:
            on_subject(result)
    return EvalResult(results)


def save_results(result: EvalResult, save_dir: str) -> None:
    """results.json and results.log as LLaMA-Factory writes them, and scores.json with each subject's score."""
    folder = Path(save_dir)
    folder.mkdir(parents=True, exist_ok=False)
    answers = {r.subject.key: {str(i): letter for i, letter in enumerate(r.predictions)} for r in result.subjects}
    (folder / "results.json").write_text(json.dumps(answers, indent=2), encoding="utf-8")
    (folder / "results.log").write_text(result.score_lines(), encoding="utf-8")
    scores = {"categories": result.category_scores(),
              "subjects": {r.subject.key: {"name": r.subject.name, "category": r.subject.category,
                                           "questions": len(r.predictions), "accuracy": r.accuracy}
                           for r in result.subjects}}
    (folder / "scores.json").write_text(json.dumps(scores, indent=2, ensure_ascii=False), encoding="utf-8")


def run_eval(cfg: LmforgeConfig, subjects: list[Subject],
             on_subject: Callable[[SubjectResult], None] | None = None) -> EvalResult:
    """Load the model (base + merged adapters) and evaluate it on `subjects` (`read_task`'s, read before
    `preflight(cfg, "eval")` and this call, so a data or reference error comes before torch loads)."""
    group = cfg.evaluation
    tokenizer = load_tokenizer(cfg.model)
    template = run_template(cfg.model, tokenizer, preserve_thinking=cfg.data.preserve_thinking)
    model = load_base_model(cfg.model, dtype=inference_dtype(cfg.model), cutoff_len=cfg.data.cutoff_len)
    model = with_adapters_merged(model, cfg.model.adapter_paths()).eval()
    if torch.cuda.is_available():
        model.to("cuda")
    seed = cfg.training.seed if cfg.training.seed is not None else DEFAULT_SEED
    result = evaluate(model, tokenizer, template, subjects, group, seed=seed,
                      enable_thinking=cfg.data.enable_thinking, on_subject=on_subject)
    if group.save_dir is not None:
        save_results(result, group.save_dir)
    return result
