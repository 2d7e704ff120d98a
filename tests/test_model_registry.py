"""The model registry as data (hub/models.tsv): every name LLaMA-Factory registers, its hub ids, default
template, modality and group; `lmforge models list|info`; a registered name resolving to its hub id."""

import re
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from lmforge.cli.main import app
from lmforge.data.multimodal.plugin import MM_PLUGINS
from lmforge.data.templates.registry import TEMPLATES
from lmforge.data.templates.template import Template
from lmforge.errors import ModelError
from lmforge.hub.model_groups import COLUMNS, read_table
from lmforge.hub.registry import filter_models, get_model, list_models
from lmforge.hub.resolve import check_model_reference, resolve_model_path

# The templates of remote-code multimodal families (none in transformers 5.25, which ships MiniCPM-V 4.6 / 4.7,
# Kimi K2.5 and dots3_note, other checkpoints): the processor-native plugin serves their processors, which
# expand their own image tokens (tests/multimodal/test_remote_code_vlm.py, on a tiny remote-code model).
REMOTE_CODE_TEMPLATES = {"dots_ocr", "kimi_vl", "minicpm_o", "minicpm_v", "minicpm_v_4_5", "moss_vl", "youtu_vl"}

# A sample of LLaMA-Factory's names, old and new (the table has all of them; scripts cannot read its source here).
LLAMAFACTORY_NAMES = ("Aya-23-8B-Chat", "BLOOM-560M", "Qwen2.5-7B-Instruct", "Qwen3-8B-Thinking",
                      "Qwen3-4B-Instruct-2507", "Qwen3.5-9B-Base", "Qwen3-VL-8B-Instruct", "Gemma-3-1B-Instruct",
                      "Gemma-3n-E4B-Instruct", "Gemma-4-31B-Thinking", "GLM-4.5-Air-Thinking", "GLM-4.7-Flash",
                      "MiniMax-M2-Thinking", "Seed-OSS-36B-Instruct", "ERNIE-4.5-21B-A3B-Thinking", "Intern-S1-mini",
                      "LFM2.5-1.2B-Instruct", "Granite-4.0-tiny-preview", "Ministral-3-8B-Instruct-2512",
                      "Phi-4-3.8B-instruct", "Hunyuan-7B-Instruct", "GPT-OSS-20B-Thinking", "Llama-4-Scout-17B-16E")


def test_the_table_has_every_llamafactory_name_with_its_hub_ids():
    models = list_models()
    assert len(models) >= 639  # LLaMA-Factory's 634 distinct names, and lmforge's own 5
    for name in LLAMAFACTORY_NAMES:
        assert get_model(name).hub_ids.get("hf"), name
    for model in models:
        for hub, ref in model.hub_ids.items():
            assert re.fullmatch(r"[\w.-]+/[\w.-]+", ref), (model.name, hub, ref)
    assert get_model("Qwen2.5-7B-Instruct").hub_ids == {"hf": "Qwen/Qwen2.5-7B-Instruct",
                                                        "modelscope": "Qwen/Qwen2.5-7B-Instruct"}
    assert get_model("Qwen/Qwen3-8B").name == "Qwen3-8B-Thinking"  # a hub id finds its display name


def test_every_model_names_a_registered_template():
    missing = {m.template for m in list_models() if m.template and m.template not in TEMPLATES}
    assert not missing, f"unknown templates in models.tsv: {sorted(missing)}"


def has_multimodal_path(template: Template) -> bool:
    """A hand-written plugin, a processor transformers ships for the family, or, where the template says the
    family is the checkpoint's own code, that processor (both served by the processor-native plugin)."""
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

    from lmforge.model.template_fit import family_key

    shipped = {family_key(name.removesuffix("Processor")) for name in PROCESSOR_MAPPING_NAMES.values() if name}
    return template.mm_plugin in MM_PLUGINS or family_key(template.mm_plugin) in shipped or template.remote_code


def test_modality_matches_the_template_and_every_multimodal_group_has_a_path():
    no_path, wrong_kind, remote = set(), [], set()
    for model in list_models():
        if model.template not in TEMPLATES:
            continue  # `auto`
        template = TEMPLATES.get(model.template)
        if model.multimodal and not (template.multimodal and has_multimodal_path(template)):
            no_path.add(model.template)
        if model.multimodal and template.remote_code:
            remote.add(model.template)
        if not model.multimodal and template.multimodal:  # the Gemma-3 1B trap, in the registry itself
            wrong_kind.append((model.name, model.template))
    assert not wrong_kind
    assert not no_path
    assert remote == REMOTE_CODE_TEMPLATES - {"minicpm_v_4_5"}  # a template no group names by default
    remote_templates = [t for t in TEMPLATES.entries() if t.remote_code]
    assert {t.name for t in remote_templates} == REMOTE_CODE_TEMPLATES
    # the mark is for families with no other path: one transformers ships (or a plugin) drops it
    assert not [t.name for t in remote_templates if has_multimodal_path(replace(t, remote_code=False))]
    text, vlm = get_model("Gemma-3-1B-Instruct"), get_model("Gemma-3-4B-Instruct")
    assert (text.modality, text.template, vlm.modality, vlm.template) == ("text", "gemma2", "image", "gemma3")
    assert get_model("MedGemma-27B-Instruct").modality == "text"  # medgemma-27b-text-it, not the VLM
    assert get_model("Qwen2-Audio-7B-Instruct").modality == "audio"


def test_newer_families_beyond_llamafactorys_table_have_rows():
    """SmolLM3 and EXAONE 4 (not in LLaMA-Factory's table): hub ids, their templates, text models."""
    assert {m.name: (m.template, m.hub_ids["hf"]) for m in filter_models("SmolLM3")} == {
        "SmolLM3-3B-Base": ("smollm3", "HuggingFaceTB/SmolLM3-3B-Base"),
        "SmolLM3-3B-Thinking": ("smollm3", "HuggingFaceTB/SmolLM3-3B")}
    assert {m.name: (m.template, m.hub_ids["hf"]) for m in filter_models("EXAONE-4")} == {
        "EXAONE-4.0-1.2B-Instruct": ("exaone4", "LGAI-EXAONE/EXAONE-4.0-1.2B"),
        "EXAONE-4.0-32B-Instruct": ("exaone4", "LGAI-EXAONE/EXAONE-4.0-32B"),
        "EXAONE-4.0.1-32B-Instruct": ("exaone4", "LGAI-EXAONE/EXAONE-4.0.1-32B")}
    assert get_model("HuggingFaceTB/SmolLM3-3B").name == "SmolLM3-3B-Thinking"
    assert get_model("LGAI-EXAONE/EXAONE-4.0-32B").group == "EXAONE-4"
    assert not any(m.multimodal for m in filter_models(templates={"smollm3", "exaone4"}))
    assert {"EXAONE-3.0-7.8B-Instruct"} == {m.name for m in filter_models("EXAONE")} - {
        m.name for m in filter_models("EXAONE-4")}


def test_filters_by_family_modality_and_template():
    gemma3 = {m.name for m in filter_models("gemma-3")}
    assert {"Gemma-3-1B-Instruct", "Gemma-3-27B-Instruct"} <= gemma3 and "Gemma-3n-E2B" not in gemma3
    assert {m.name for m in filter_models("Gemma-3", multimodal=False)} == {
        "Gemma-3-270M", "Gemma-3-1B", "Gemma-3-270M-Instruct", "Gemma-3-1B-Instruct"}
    assert {m.group for m in filter_models("Qwen3", multimodal=True)} == {"Qwen3-VL", "Qwen3-Omni", "Qwen3-ASR"}
    assert {m.name for m in filter_models(templates={"qwen3_nothink"})} == {
        "Qwen3-4B-Instruct-2507", "Qwen3-30B-A3B-Instruct-2507", "Qwen3-235B-A22B-Instruct-2507",
        "Qwen3-Next-80B-A3B-Instruct"}


def test_models_list_and_info_commands(monkeypatch):
    from lmforge.cli import common

    monkeypatch.setattr(common.console, "width", 240)  # the table's names unshortened
    runner = CliRunner()
    listed = runner.invoke(app, ["models", "list", "--family", "Gemma-3", "--text"])
    assert listed.exit_code == 0, listed.output
    assert "Gemma-3-1B-Instruct" in listed.output and "Gemma-3-4B-Instruct" not in listed.output
    assert "4 model(s) in 1 group(s)" in listed.output
    by_alias = runner.invoke(app, ["models", "list", "--template", "qwen2.5"])
    assert "Qwen2.5-7B-Instruct" in by_alias.output and "Kimi-Dev-72B-Instruct" in by_alias.output
    info = runner.invoke(app, ["models", "info", "Qwen3-VL-8B-Thinking"])
    assert info.exit_code == 0, info.output
    assert "hf: Qwen/Qwen3-VL-8B-Thinking" in info.output and "modality: image,video" in info.output
    assert "qwen3_vl (not in this lmforge yet" in info.output or "template: qwen3_vl\n" in info.output
    unknown = runner.invoke(app, ["models", "info", "Qwen3-8B-Thinkin"])
    assert unknown.exit_code == 1 and "did you mean `Qwen3-8B-Thinking`" in unknown.output


def test_a_registered_name_resolves_to_its_hub_id_and_offline_names_the_id_it_needs(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # online, the hub id goes to from_pretrained as it is (no call here)
    assert resolve_model_path("Seed-OSS-36B-Instruct") == "ByteDance-Seed/Seed-OSS-36B-Instruct"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as err:
        resolve_model_path("Seed-OSS-36B-Instruct")
    assert str(err.value).startswith("`model_name_or_path: Seed-OSS-36B-Instruct` (registered as the hub id "
                                     "`ByteDance-Seed/Seed-OSS-36B-Instruct`) is not a local folder")
    assert "hf download ByteDance-Seed/Seed-OSS-36B-Instruct --local-dir DIR" in str(err.value)
    with pytest.raises(ModelError, match=r"`model_name_or_path: Qwen2.5-7B-Instruct` \(registered as the hub id "
                                         r"`Qwen/Qwen2.5-7B-Instruct`\) comes from ModelScope.*modelscope download "
                                         r"--model Qwen/Qwen2.5-7B-Instruct"):
        check_model_reference("Qwen2.5-7B-Instruct", hub="modelscope")


def test_a_malformed_table_row_names_the_file_and_row(tmp_path):
    table = tmp_path / "models.tsv"
    table.write_text("\t".join(COLUMNS) + "\nMy-Model\tMine\tchatml\tpictures\torg/my-model\t\t\t\n")
    with pytest.raises(ModelError, match=r"models.tsv, row 2 \(My-Model\): modality `pictures`: pictures not one "
                                         r"of text, image, video, audio"):
        read_table(table)
    table.write_text("\t".join(COLUMNS) + "\nMy-Model\tMine\tchatml\ttext\t\t\t\t\n")
    with pytest.raises(ModelError, match=r"row 2 \(My-Model\): no hf, modelscope or builtin source"):
        read_table(table)
