"""Prediction scores: BLEU-4 from sacrebleu and ROUGE from rouge-score, on one tokenization (CJK per character)."""

import json
import subprocess
import sys

import pytest
from sacrebleu import sentence_bleu

from lmforge.errors import DataError
from lmforge.infer.predict_metrics import (
    RESULTS_FILE,
    MetricTokenizer,
    read_predictions,
    similarity_scores,
    write_predict_results,
)


def test_a_prediction_equal_to_its_label_scores_100_everywhere():
    texts = ["The car accelerated rapidly.", "我爱北京天安门。", "Chillax: chill and relax, at once"]
    assert similarity_scores(texts, texts) == {"bleu-4": 100.0, "rouge-1": 100.0, "rouge-2": 100.0, "rouge-l": 100.0}


def test_partial_overlap_matches_sacrebleu_and_hand_counted_rouge():
    prediction, label = "the cat sat on the mat", "the cat is on the mat"
    scores = similarity_scores([prediction], [label])
    assert scores["bleu-4"] == pytest.approx(sentence_bleu(prediction, [label]).score, abs=1e-4)
    assert 0 < scores["bleu-4"] < 100
    # 5 of 6 words shared; bigrams: the cat, on the, the mat of 5; longest common subsequence 5 words
    assert scores["rouge-1"] == pytest.approx(100 * 5 / 6, abs=1e-3)
    assert scores["rouge-2"] == pytest.approx(100 * 3 / 5, abs=1e-3)
    assert scores["rouge-l"] == pytest.approx(100 * 5 / 6, abs=1e-3)


def test_chinese_is_scored_per_character_and_scores_are_means_over_rows():
    assert MetricTokenizer().tokenize("我爱北京, hello world!") == ["我", "爱", "北", "京", ",", "hello", "world", "!"]
    chinese = similarity_scores(["我爱北京"], ["我爱上海"])
    assert chinese["rouge-1"] == pytest.approx(50.0) and chinese["rouge-2"] == pytest.approx(100 / 3, abs=1e-3)
    assert chinese["bleu-4"] == pytest.approx(sentence_bleu("我爱北京", ["我爱上海"], tokenize="zh").score, abs=1e-4)
    both = similarity_scores(["我爱北京", "same words here"], ["我爱上海", "same words here"])
    assert both["rouge-1"] == pytest.approx((50.0 + 100.0) / 2)
    assert similarity_scores(["完全不同"], ["something else"])["rouge-l"] == 0.0


def test_results_file_scores_labelled_rows_and_reports_this_runs_throughput(tmp_path):
    path = tmp_path / "generated_predictions.jsonl"
    rows = [{"prompt": "a", "predict": "the cat sat on the mat", "label": "the cat is on the mat"},
            {"prompt": "b", "predict": ["我爱北京", "second candidate"], "label": "我爱上海"},
            {"prompt": "c", "predict": "no label to compare with", "label": None}]
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    assert read_predictions(path) == (["the cat sat on the mat", "我爱北京"], ["the cat is on the mat", "我爱上海"], 1)
    results = write_predict_results(path, runtime_s=2.0, generated=1)
    expected = similarity_scores(["the cat sat on the mat", "我爱北京"], ["the cat is on the mat", "我爱上海"])
    assert json.loads((tmp_path / RESULTS_FILE).read_text()) == results
    assert {name: results[f"predict_{name}"] for name in expected} == expected
    assert results["predict_samples"] == 3 and results["predict_unlabelled_samples"] == 1
    assert results["predict_runtime"] == 2.0 and results["predict_samples_per_second"] == 0.5

    path.write_text(path.read_text() + "{torn")
    with pytest.raises(DataError, match=r"line 4 is not JSON"):
        read_predictions(path)


def test_training_does_not_import_the_prediction_scorers():
    """Every `lmforge train` imports the runner; rouge-score (and the nltk it pulls) load only to score predictions."""
    code = ("import sys, lmforge.train.runner; "
            "print(sorted(m for m in ('rouge_score', 'nltk', 'sacrebleu') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
