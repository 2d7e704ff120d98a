"""`lmforge eval`'s evaluator on builtin:tiny-llama and a two-subject MMLU-layout folder: answers are the
argmax of the model's own A-D logits, the prompt is the template's rendering of the shots and the question,
save_dir holds LLaMA-Factory's files, and bad task folders fail with the file and the fix."""

import json
import zipfile

import pytest
import torch

from lmforge.config import build_config
from lmforge.data.eval_tasks import load_task, read_task
from lmforge.data.templates.select import run_template
from lmforge.errors import ConfigError, DataError
from lmforge.infer.multiple_choice import run_eval, subject_prompts
from lmforge.model.loading import load_base_model, load_tokenizer

MAPPING = {"anatomy": {"name": "anatomy", "category": "Other"},
           "astronomy": {"name": "astronomy", "category": "STEM"}}
DEV = {"anatomy": 'What is 1+1?,1,2,3,4,B\n"Pick, C",x,y,z,w,C\nSky?,blue,red,green,pink,A\n',
       "astronomy": "Which is a planet?,Mars,Moon,Sun,Vega,A\n"}
TEST = {"anatomy": "Bones in an adult?,206,12,1000,3,A\nHeart chambers?,1,2,3,4,D\nA long question about the "
                   "muscles of the arm and the hand?,biceps,liver,lung,skull,A\n",
        "astronomy": "Closest star?,Vega,Sirius,Sun,Polaris,C\nRed planet?,Venus,Mars,Earth,Moon,B\n"}


def write_mmlu(root, dev=DEV, test=TEST):
    """The MMLU layout of LLaMA-Factory's mmlu.zip, extracted: data/{dev,test}/S_{dev,test}.csv, no header."""
    folder = root / "mmlu"
    for split, files in (("dev", dev), ("test", test)):
        (folder / "data" / split).mkdir(parents=True, exist_ok=True)
        for subject, text in files.items():
            (folder / "data" / split / f"{subject}_{split}.csv").write_text(text, encoding="utf-8")
    (folder / "mapping.json").write_text(json.dumps(MAPPING), encoding="utf-8")
    return root


def config(task_dir, **keys):
    return build_config({"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "task": "mmlu_test",
                         "task_dir": str(task_dir), "n_shot": 2, "batch_size": 2, **keys})


@pytest.fixture(scope="module")
def tiny():
    cfg = build_config({"model_name_or_path": "builtin:tiny-llama", "template": "chatml"})
    tokenizer = load_tokenizer(cfg.model)
    model = load_base_model(cfg.model, dtype=torch.float32, cutoff_len=2048).eval()
    return tokenizer, run_template(cfg.model, tokenizer), model


def test_answers_are_the_argmax_of_the_models_own_choice_logits(tmp_path, tiny):
    tokenizer, template, model = tiny
    cfg = config(write_mmlu(tmp_path), save_dir=str(tmp_path / "out"))
    subjects = read_task(cfg.evaluation)
    result = run_eval(cfg, subjects)
    letter_ids = [tokenizer.encode(letter, add_special_tokens=False)[-1] for letter in "ABCD"]
    assert len(set(letter_ids)) == 4
    correct, total = 0, 0
    for subject, scored in zip(subjects, result.subjects, strict=True):
        prompts = subject_prompts(subject, template, tokenizer, lang="en", n_shot=2, seed=42)
        assert len({len(p) for p in prompts}) > 1  # rows of different lengths share a left-padded batch
        by_hand = []
        for prompt in prompts:  # one row at a time, no padding
            with torch.no_grad():
                logits = model(torch.tensor([prompt])).logits[0, -1]
            by_hand.append("ABCD"[int(logits[letter_ids].argmax())])
        assert scored.predictions == by_hand
        right = sum(p == q.answer for p, q in zip(by_hand, subject.questions, strict=True))
        assert scored.accuracy == pytest.approx(100 * right / len(by_hand))
        correct, total = correct + right, total + len(by_hand)
    assert result.category_scores()["Average"] == pytest.approx(100 * correct / total)
    assert result.category_scores()["STEM"] == result.subjects[1].accuracy


def test_the_prompt_is_the_templates_rendering_of_the_shots_and_the_question(tmp_path, tiny):
    tokenizer, template, _ = tiny
    astronomy = load_task(write_mmlu(tmp_path), "mmlu", "test")[1]
    question = ("Closest star?\nA. Vega\nB. Sirius\nC. Sun\nD. Polaris\nAnswer:<|im_end|>\n"
                "<|im_start|>assistant\n")
    lead = "<|im_start|>user\nThe following are multiple choice questions (with answers) about astronomy.\n\n"
    shot = ("Which is a planet?\nA. Mars\nB. Moon\nC. Sun\nD. Vega\nAnswer:<|im_end|>\n"
            "<|im_start|>assistant\nA<|im_end|>\n")
    expected = {0: lead + question, 1: lead + shot + "<|im_start|>user\n" + question}
    for n_shot, text in expected.items():
        ids = subject_prompts(astronomy, template, tokenizer, lang="en", n_shot=n_shot, seed=42)[0]
        assert ids == tokenizer(text, add_special_tokens=False)["input_ids"], tokenizer.decode(ids)
    fewshot = run_template(build_config({"model_name_or_path": "builtin:tiny-llama", "template": "fewshot"}).model,
                           tokenizer)  # LLaMA-Factory's eval example's template: no eos between the shots
    text = ("The following are multiple choice questions (with answers) about astronomy.\n\nWhich is a planet?\n"
            "A. Mars\nB. Moon\nC. Sun\nD. Vega\nAnswer:A\n\nClosest star?\nA. Vega\nB. Sirius\nC. Sun\nD. Polaris\n"
            "Answer:")
    ids = subject_prompts(astronomy, fewshot, tokenizer, lang="en", n_shot=1, seed=42)[0]
    assert ids == tokenizer(text, add_special_tokens=False)["input_ids"], tokenizer.decode(ids)
    anatomy = load_task(tmp_path, "mmlu", "test")[0]
    three = tokenizer.decode(subject_prompts(anatomy, template, tokenizer, lang="en", n_shot=3, seed=42)[0])
    assert three.count("<|im_start|>assistant\n") == 4 and all(q in three for q in ("1+1?", "Pick, C", "Sky?"))
    chinese = tokenizer.decode(subject_prompts(anatomy, template, tokenizer, lang="zh", n_shot=0, seed=42)[0])
    assert "以下是中国关于anatomy考试的单项选择题" in chinese
    assert chinese.endswith("\n答案：<|im_end|>\n<|im_start|>assistant\n")


def test_save_dir_holds_llamafactorys_files_and_is_never_written_over(tmp_path):
    task_dir, out = write_mmlu(tmp_path), tmp_path / "saves" / "eval"
    cfg = config(task_dir, save_dir=str(out))
    result = run_eval(cfg, read_task(cfg.evaluation))
    answers = json.loads((out / "results.json").read_text())
    assert answers == {r.subject.key: {str(i): p for i, p in enumerate(r.predictions)} for r in result.subjects}
    scores = result.category_scores()
    assert list(scores) == ["Average", "STEM", "Other"]
    assert (out / "results.log").read_text() == "\n".join(f"{name:>15}: {value:.2f}" for name, value in scores.items())
    saved = json.loads((out / "scores.json").read_text())
    assert saved["subjects"]["astronomy"] == {"name": "astronomy", "category": "STEM", "questions": 2,
                                              "accuracy": result.subjects[1].accuracy}
    with pytest.raises(ConfigError, match="already exists: choose a new folder"):
        read_task(cfg.evaluation)


def test_a_missing_folder_or_a_bad_row_names_the_file_the_row_and_where_to_get_the_data(tmp_path):
    with pytest.raises(DataError, match=r"`task_dir: .*nowhere` is not a folder; get LLaMA-Factory's "
                                        r"`evaluation/mmlu` folder"):
        load_task(tmp_path / "nowhere", "mmlu", "test")
    with pytest.raises(DataError, match=r"mmlu not found: `task: mmlu_test` reads the folder task_dir/mmlu"):
        load_task(tmp_path, "mmlu", "test")
    write_mmlu(tmp_path, test={**TEST, "astronomy": "Closest star?,Vega,Sirius,Sun,C\n"})
    with pytest.raises(DataError, match=r"astronomy_test.csv: row 1 has 5 columns, expected 6 .*fix or remove the "
                                        r"row, or get LLaMA-Factory's `evaluation/mmlu` folder"):
        load_task(tmp_path, "mmlu", "test")
    write_mmlu(tmp_path, test={**TEST, "astronomy": "Closest star?,Vega,Sirius,Sun,Polaris,C\nRed?,a,b,c,d,E\n"})
    with pytest.raises(DataError, match=r"astronomy_test.csv: row 2 has answer 'E', expected one of A, B, C, D"):
        load_task(tmp_path, "mmlu", "test")
    (tmp_path / "mmlu" / "data" / "test" / "astronomy_test.csv").unlink()
    with pytest.raises(DataError, match=r"subject `astronomy` \(mapping.json\) has no test file"):
        load_task(tmp_path, "mmlu", "test")
    (tmp_path / "mmlu" / "mapping.json").unlink()
    with pytest.raises(DataError, match=r"mapping.json not found"):
        load_task(tmp_path, "mmlu", "test")
    with pytest.raises(ConfigError, match="`lmforge eval` needs `task`"):
        read_task(build_config({}).evaluation)
    with pytest.raises(ConfigError, match="must be NAME_SPLIT"):
        build_config({"task": "mmlu"})


def test_the_ceval_and_cmmlu_layouts_read_from_their_zips_as_the_mmlu_layout(tmp_path):
    """C-Eval: F/S_F.csv with an id,...,explanation header; CMMLU: F/S.csv with an index column."""
    expected = load_task(write_mmlu(tmp_path / "mmlu_root"), "mmlu", "test")
    for name, header, path in (("ceval", "id,question,A,B,C,D,answer,explanation\n", "{f}/{s}_{f}.csv"),
                               ("cmmlu", ",Question,A,B,C,D,Answer\n", "{f}/{s}.csv")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "mapping.json").write_text(json.dumps(MAPPING))
        with zipfile.ZipFile(folder / f"{name}.zip", "w") as archive:
            for split, files in (("dev", DEV), ("test", TEST)):
                for subject, text in files.items():
                    rows = [line for line in text.splitlines() if line]
                    body = "".join(f"{i},{row}" + (",why" if name == "ceval" else "") + "\n"
                                   for i, row in enumerate(rows))
                    archive.writestr(path.format(f=split, s=subject), header + body)
        assert load_task(tmp_path, name, "test") == expected
    with zipfile.ZipFile(tmp_path / "ceval" / "ceval.zip", "a") as archive:
        archive.writestr("val/anatomy_val.csv", "id,question,A,B,C,D\n0,Q?,a,b,c,d\n")
    with pytest.raises(DataError, match=r"ceval.zip:val/anatomy_val.csv has no answer column"):
        load_task(tmp_path, "ceval", "validation")
