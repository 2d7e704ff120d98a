"""Export keys: types, lists and the cross-field rule, checked without loading any model."""

import pytest

from lmforge.config import build_config
from lmforge.errors import ConfigError


def test_export_keys_parse_as_llamafactory_writes_them():
    cfg = build_config({"export_gguf": "f16, q8_0", "export_dtype": "bfloat16",
                        "export_quantization_bit": 8})
    assert cfg.export.export_gguf == ["f16", "q8_0"]
    assert cfg.export.export_dtype == "bfloat16" and cfg.export.export_modelfile is True
    assert cfg.export.export_quantization_bit == 8


@pytest.mark.parametrize(("raw", "message"), [
    ({"export_gguf": "q4_k"}, "key `export_gguf`"),
    ({"export_quantization_bit": 5}, "key `export_quantization_bit` = 5"),
    ({"export_quantization_bit": 3}, "`export_quantization_bit: 3` is GPTQ only: set `export_quantization_dataset`"),
    ({"export_dtype": "fp8"}, "key `export_dtype` = 'fp8'"),
    ({"export_quantization_bit": 4, "export_legacy_format": True},
     "bitsandbytes exports are saved as safetensors only"),
    ({"export_quantization_dataset": "c4.jsonl"}, "`export_quantization_dataset` calibrates a GPTQ export: set "
                                                  "`export_quantization_bit`"),
])
def test_bad_export_keys_are_one_clear_message(raw, message):
    with pytest.raises(ConfigError) as err:
        build_config(raw)
    assert message in " ".join(str(err.value).split())
