"""The multiple-choice benchmarks of LLaMA-Factory's `eval` command (MMLU, CMMLU, C-Eval): their files, read
as they are (no `datasets` loading script, no download, no cache), and each question as chat turns.

A benchmark is a folder `task_dir/NAME` with `mapping.json` (each subject's display name and category) and
its CSV files, extracted or inside LLaMA-Factory's `NAME.zip` (read in place). The layouts, per subject S and
split folder F (`dev` for the `train` split the shots come from, `val` for `validation`, `test`):

- MMLU (also the original data.tar): `data/F/S_F.csv`, no header, columns question, A, B, C, D, answer
- C-Eval: `F/S_F.csv`, header `id,question,A,B,C,D,answer,explanation` (its test split has no answers)
- CMMLU: `F/S.csv`, header `,Question,A,B,C,D,Answer` (a leading index column)
"""

import csv
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lmforge.config.evaluation import EvaluationGroup
from lmforge.data.templates.template import Message
from lmforge.errors import ConfigError, DataError

CHOICES = ("A", "B", "C", "D")
SPLIT_FOLDERS = {"train": "dev", "validation": "val", "test": "test"}
WHERE_TO_GET = ("get LLaMA-Factory's `evaluation/{name}` folder (mapping.json and {name}.zip) from "
                "https://github.com/hiyouga/LLaMA-Factory and set `task_dir` to the folder holding it")


@dataclass(frozen=True)
class Question:
    text: str
    choices: tuple[str, ...]  # the texts of A, B, C, D
    answer: str  # A-D


@dataclass(frozen=True)
class Subject:
    key: str  # the file name's subject, as mapping.json keys it
    name: str  # the display name the system line names
    category: str
    shots: list[Question]  # the `train` (dev) split, the solved examples shown before each question
    questions: list[Question]  # the evaluated split


@dataclass(frozen=True)
class PromptWords:
    """How a question is written out (LLaMA-Factory's eval prompt, per language)."""

    system: str  # the first user turn starts with it; `{subject}` is the subject's display name
    choice: str
    answer: str


PROMPT_WORDS = {
    "en": PromptWords("The following are multiple choice questions (with answers) about {subject}.\n\n",
                      "\n{choice}. {content}", "\nAnswer:"),
    "zh": PromptWords("以下是中国关于{subject}考试的单项选择题，请选出其中的正确答案。\n\n",
                      "\n{choice}. {content}", "\n答案："),
}


def question_text(question: Question, lang: str) -> str:
    words = PROMPT_WORDS[lang]
    choices = "".join(words.choice.format(choice=letter, content=content)
                      for letter, content in zip(CHOICES, question.choices, strict=True))
    return question.text + choices + words.answer


def question_messages(question: Question, shots: list[Question], subject_name: str, lang: str) -> list[Message]:
    """The shots as earlier user/assistant turns, then the question as the last user turn; the first user turn
    starts with the line naming the subject (LLaMA-Factory puts it there, not in a system turn)."""
    messages: list[Message] = []
    for shot in shots:
        messages += [Message("user", question_text(shot, lang)), Message("assistant", shot.answer)]
    messages.append(Message("user", question_text(question, lang)))
    lead = PROMPT_WORDS[lang].system.format(subject=subject_name)
    messages[0] = Message("user", lead + messages[0].content)
    return messages


class _Files:
    """The benchmark's files: the extracted folder first, then `NAME.zip` beside it."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder = folder
        self.zip_path = folder / f"{name}.zip"
        self.archive: zipfile.ZipFile | None = None
        if self.zip_path.is_file():
            try:
                self.archive = zipfile.ZipFile(self.zip_path)
            except zipfile.BadZipFile:
                raise DataError(f"{self.zip_path} is not a readable zip file: download it again") from None

    def find(self, candidates: list[str]) -> tuple[str, str] | None:
        """(where, for messages; the text) of the first candidate path that exists."""
        for relative in candidates:
            path = self.folder / relative
            if path.is_file():
                return str(path), _decode(path.read_bytes(), str(path))
        names = set(self.archive.namelist()) if self.archive is not None else set()
        for relative in candidates:
            if relative in names:
                where = f"{self.zip_path}:{relative}"
                return where, _decode(self.archive.read(relative), where)  # type: ignore[union-attr]
        return None

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{where} is not UTF-8 text ({err}): save it as UTF-8") from None


def _column_positions(header: list[str], where: str) -> tuple[int, list[int], int | None]:
    lowered = [cell.strip().lower() for cell in header]
    missing = [column for column in ("question", "a", "b", "c", "d") if column not in lowered]
    if missing:
        raise DataError(f"{where}: the header names no {', '.join(missing)} column; it needs question, A, B, C, "
                        "D and answer (or no header and those six columns, as MMLU's files)")
    answer = lowered.index("answer") if "answer" in lowered else None
    return lowered.index("question"), [lowered.index(letter) for letter in "abcd"], answer


def read_questions(text: str, where: str, fix: str) -> list[Question]:
    """The questions of one CSV file, each with its answer letter."""
    rows = csv.reader(io.StringIO(text))
    first = next(rows, None)
    if first is None:
        raise DataError(f"{where} is empty; {fix}")
    if "question" in (cell.strip().lower() for cell in first):
        question_at, choices_at, answer_at = _column_positions(first, where)
        width, body = len(first), list(rows)
        line = 2
    else:  # MMLU's files: no header, six columns
        question_at, choices_at, answer_at, width, body, line = 0, [1, 2, 3, 4], 5, 6, [first, *rows], 1
    if answer_at is None:
        raise DataError(f"{where} has no answer column, so it cannot be scored (C-Eval's test answers are not "
                        "public: evaluate `task: ceval_validation`)")
    questions = []
    for number, row in enumerate(body, start=line):
        if not row:
            continue
        if len(row) != width:
            raise DataError(f"{where}: row {number} has {len(row)} columns, expected {width} (question, A, B, C, "
                            f"D, answer); fix or remove the row, or {fix}")
        answer = row[answer_at].strip()
        if answer not in CHOICES:
            raise DataError(f"{where}: row {number} has answer {answer!r}, expected one of A, B, C, D; fix or "
                            f"remove the row, or {fix}")
        questions.append(Question(row[question_at], tuple(row[at] for at in choices_at), answer))
    return questions


def _mapping(folder: Path, fix: str) -> dict[str, dict[str, str]]:
    path = folder / "mapping.json"
    if not path.is_file():
        raise DataError(f"{path} not found: the benchmark folder needs mapping.json (each subject's name and "
                        f"category); {fix}")
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path} is not valid JSON ({err}); {fix}") from None
    if not isinstance(mapping, dict) or not mapping or not all(
            isinstance(entry, dict) and isinstance(entry.get("name"), str) and isinstance(entry.get("category"), str)
            for entry in mapping.values()):
        raise DataError(f"{path} must map each subject to {{\"name\": ..., \"category\": ...}}; {fix}")
    return mapping


def load_task(task_dir: str | Path, name: str, split: str) -> list[Subject]:
    """Every subject of mapping.json, in its order, with its shots and its questions of `split`."""
    fix = WHERE_TO_GET.format(name=name)
    if not Path(task_dir).is_dir():
        raise DataError(f"`task_dir: {task_dir}` is not a folder; {fix}")
    folder = Path(task_dir) / name
    if not folder.is_dir():
        raise DataError(f"{folder} not found: `task: {name}_{split}` reads the folder task_dir/{name}; {fix}")
    mapping = _mapping(folder, fix)
    files = _Files(folder, name)
    try:
        return [_subject(files, key, entry, split, fix) for key, entry in mapping.items()]
    finally:
        files.close()


def _subject(files: _Files, key: str, entry: dict[str, str], split: str, fix: str) -> Subject:
    splits = {}
    for wanted in dict.fromkeys(("train", split)):
        where = SPLIT_FOLDERS[wanted]
        candidates = [f"data/{where}/{key}_{where}.csv", f"{where}/{key}_{where}.csv", f"{where}/{key}.csv"]
        found = files.find(candidates)
        if found is None:
            source = f"{files.folder}" + (f" or {files.zip_path}" if files.archive is not None else "")
            raise DataError(f"subject `{key}` (mapping.json) has no {wanted} file in {source} (looked for "
                            f"{', '.join(candidates)}); {fix}")
        splits[wanted] = read_questions(found[1], found[0], fix)
    return Subject(key, entry["name"], entry["category"], splits["train"], splits[split])


def read_task(group: EvaluationGroup) -> list[Subject]:
    """The configured task's subjects, once `save_dir` is known to be new (both before any weights load)."""
    if not group.task:
        raise ConfigError("`lmforge eval` needs `task`: the benchmark and split, e.g. `task: mmlu_test`")
    if group.save_dir is not None and Path(group.save_dir).exists():
        raise ConfigError(f"`save_dir: {group.save_dir}` already exists: choose a new folder (results are never "
                          "written over earlier ones)")
    return load_task(group.task_dir, *group.task_parts())
