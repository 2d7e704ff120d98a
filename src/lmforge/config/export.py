"""The export group (`lmforge export`): where and how the merged model is written, verified, quantized and
uploaded."""

from typing import Literal

from pydantic import Field, field_validator

from lmforge.config.groups_base import Group, split_list


class ExportGroup(Group):
    export_dir: str | None = Field(None, description="Folder the merged model is written to.")
    export_size: int = Field(5, gt=0, description="Maximum shard size in GB.")
    export_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Dtype of the exported weights; auto is `infer_dtype` (float32 on CPU).")
    export_device: Literal["cpu", "auto"] = Field(
        "cpu", description="Where adapters are merged and verified: cpu, or auto (the GPU when there is one).")
    export_legacy_format: bool = Field(
        False, description="Write pytorch_model*.bin shards (torch.save) instead of safetensors.")
    export_tolerance: float | None = Field(
        None, gt=0, description="Max |logit| difference allowed by export verification; default by dtype.")
    export_gguf: list[Literal["f16", "bf16", "q8_0"]] | None = Field(
        None, description="Also write GGUF files of these types (comma-separated), each verified by logits.")
    export_modelfile: bool = Field(True, description="Write an Ollama Modelfile next to the export.")
    export_hub_model_id: str | None = Field(
        None, description="Upload the verified export to this Hugging Face repository (created when missing).")
    export_quantization_bit: Literal[2, 3, 4, 8] | None = Field(
        None, description="Quantize the export to this many bits: with bitsandbytes (4 or 8, GPU or CPU), "
                          "or with GPTQ when export_quantization_dataset is set (2, 3, 4 or 8; `lmforge[gptq]`).")
    export_quantization_dataset: str | None = Field(
        None, description="GPTQ calibration texts: a .jsonl/.json file of rows with `text`, or a .txt file.")
    export_quantization_nsamples: int = Field(128, gt=0, description="GPTQ: calibration windows drawn.")
    export_quantization_maxlen: int = Field(1024, gt=0, description="GPTQ: tokens per calibration window.")

    _split = field_validator("export_gguf", mode="before")(split_list)
