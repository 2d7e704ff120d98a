"""GPTQ export (`export_quantization_bit` + `export_quantization_dataset`): calibration windows drawn from the
dataset as LLaMA-Factory draws them, seeded; without optimum/gptqmodel one clear error before any weight loads.
The quantization itself runs in tests/gpu (it needs `lmforge[gptq]`)."""

import json
from importlib.util import find_spec

import pytest
from rich.console import Console

from lmforge.config import build_config
from lmforge.errors import ExportError
from lmforge.export.gptq import calibration_samples, calibration_texts
from lmforge.export.pipeline import run_export


def _c4_demo(path, rows=6, words=80):
    path.write_text("\n".join(json.dumps({"text": " ".join(f"word{i}x{j}" for j in range(words))})
                              for i in range(rows)))
    return path


def test_calibration_windows_are_maxlen_tokens_of_long_enough_texts_and_seeded(tmp_path, tiny_tokenizer):
    texts = [*calibration_texts(_c4_demo(tmp_path / "c4_demo.jsonl")), "too short"]
    samples = calibration_samples(texts, tiny_tokenizer, nsamples=5, maxlen=32)
    assert len(samples) == 5
    assert all(s["input_ids"].shape == (1, 32) and s["attention_mask"].sum() == 32 for s in samples)
    longest = tiny_tokenizer(texts, add_special_tokens=False)["input_ids"]
    windows = {tuple(s["input_ids"][0].tolist()) for s in samples}
    assert all(any(" ".join(map(str, w)) in " ".join(map(str, ids)) for ids in longest) for w in windows)
    again = calibration_samples(texts, tiny_tokenizer, nsamples=5, maxlen=32)
    assert [s["input_ids"].tolist() for s in again] == [s["input_ids"].tolist() for s in samples]
    with pytest.raises(ExportError, match="no text has the 100000 tokens of `export_quantization_maxlen`"):
        calibration_samples(texts, tiny_tokenizer, nsamples=1, maxlen=100000)


def test_calibration_texts_read_txt_lines_and_refuse_rows_without_text(tmp_path):
    (tmp_path / "c.txt").write_text("one text\n\nanother text\n")
    assert calibration_texts(tmp_path / "c.txt") == ["one text", "another text"]
    (tmp_path / "c.json").write_text(json.dumps([{"instruction": "no text column"}]))
    with pytest.raises(ExportError, match="has no rows with a `text` string"):
        calibration_texts(tmp_path / "c.json")


@pytest.mark.skipif(find_spec("gptqmodel") is not None and find_spec("optimum") is not None,
                    reason="optimum and gptqmodel are installed here: tests/gpu runs the quantization")
def test_gptq_export_without_its_packages_stops_before_loading_with_the_install_line(tmp_path):
    cfg = build_config({"model_name_or_path": "builtin:tiny-llama", "template": "chatml",
                        "export_dir": str(tmp_path / "out"), "export_quantization_bit": 4,
                        "export_quantization_dataset": str(_c4_demo(tmp_path / "c4_demo.jsonl"))})
    with pytest.raises(ExportError, match=r'quantizes the export with GPTQ, which needs .*gptqmodel: '
                                          r'pip install "lmforge\[gptq\]"'):
        run_export(cfg, Console(record=True))
    assert not (tmp_path / "out").exists()  # nothing was loaded or written


@pytest.mark.slow
@pytest.mark.skipif(find_spec("gptqmodel") is not None and find_spec("optimum") is not None,
                    reason="optimum and gptqmodel are installed here")
def test_the_cli_prints_the_install_line_with_its_extra(tmp_path):
    from tests.conftest import run_cli

    config = tmp_path / "llama3_gptq.yaml"  # LLaMA-Factory's merge_lora/llama3_gptq.yaml with local paths
    config.write_text(f"model_name_or_path: builtin:tiny-llama\ntemplate: chatml\nexport_dir: {tmp_path / 'out'}\n"
                      f"export_quantization_bit: 4\nexport_quantization_dataset: {_c4_demo(tmp_path / 'c4.jsonl')}\n"
                      "export_size: 5\nexport_device: cpu\nexport_legacy_format: false\n")
    result = run_cli("export", str(config))
    assert result.returncode == 1
    assert 'pip install "lmforge[gptq]"' in " ".join(result.stderr.split()), result.stderr
