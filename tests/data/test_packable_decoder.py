"""Text packing on decoders that carry a state along the row (or pick keys over it) is refused before any weight
loads, because packed anyway their logits differ from each example's own; plain attention packs exactly."""

import pytest
import torch
import transformers
from transformers import PretrainedConfig
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from lmforge.config import build_config
from lmforge.data.packable_decoder import check_packable_decoder, decoder_layer_types, mixing_reasons
from lmforge.errors import ConfigError
from lmforge.model.packed_attention import packed_sequence_kwargs
from lmforge.preflight import preflight
from lmforge.testing.checkpoint_files import save_tiny_checkpoint_files
from lmforge.testing.tiny import TINY_FAMILIES, build_tiny_tokenizer
from tests.conftest import run_cli
from tests.refdata import refdata

STATEFUL = ["lfm2", "qwen3_next", "granitemoehybrid"]


def _model(family):
    config, auto_class = TINY_FAMILIES[family](build_tiny_tokenizer())
    torch.manual_seed(0)
    return getattr(transformers, auto_class).from_config(config, dtype=torch.float32).eval()


def _packed_and_alone(model, lengths=(7, 9, 5)):
    """Each example's logits from one packed row (positions restarting, no mask, no cache: what the trainer runs)
    and from the example alone."""
    generator = torch.Generator().manual_seed(1)
    examples = [torch.randint(10, 1000, (1, length), generator=generator) for length in lengths]
    positions = torch.cat([torch.arange(length) for length in lengths])[None]
    with torch.no_grad():
        packed = model(torch.cat(examples, 1), position_ids=positions, use_cache=False).logits[0]
        alone = [model(example, use_cache=False).logits[0] for example in examples]
    return list(zip(packed.split(list(lengths)), alone, strict=True))


@pytest.mark.parametrize("family", STATEFUL)
def test_packed_anyway_a_stateful_decoder_mixes_the_examples(family):
    """Why packing is refused: the first example has nothing before it and matches; the later ones differ."""
    (first, first_alone), *later = _packed_and_alone(_model(family))
    torch.testing.assert_close(first, first_alone, rtol=1e-5, atol=1e-5)
    assert all((packed - alone).abs().max() > 0.1 for packed, alone in later)


@pytest.mark.parametrize("family", ["lfm2", "granitemoehybrid"])
def test_the_boundaries_the_trainer_passes_do_not_stop_the_state_on_the_cpu(family):
    """transformers' PyTorch convolution and Mamba paths ignore `cu_seq_lens_*` (Qwen3-Next's raises instead)."""
    model, lengths = _model(family), (7, 9)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(10, 1000, (1, sum(lengths)), generator=generator)
    positions = torch.cat([torch.arange(length) for length in lengths])[None]
    with torch.no_grad():
        packed = model(ids, position_ids=positions, use_cache=False, **packed_sequence_kwargs(positions)).logits
        alone = model(ids[:, lengths[0]:], use_cache=False).logits
    assert (packed[0, lengths[0]:] - alone[0]).abs().max() > 0.1


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_plain_attention_packs_each_example_exactly(family):
    for packed, alone in _packed_and_alone(_model(family)):
        torch.testing.assert_close(packed, alone, rtol=1e-4, atol=1e-5)


# transformers 5.25's default config of each model type that would mix packed examples, by config style
MIXING_TYPES = ["lfm3", "qwen3_next", "qwen3_5_text", "minimax", "kimi_linear", "olmo_hybrid", "bamba",
                "granitemoehybrid", "jamba", "nemotron_h", "falcon_h1", "zamba", "zamba2", "mamba", "mamba2",
                "falcon_mamba", "recurrent_gemma", "rwkv", "xlstm", "zaya", "deepseek_v32", "glm_moe_dsa",
                "deepseek_v4"]
ATTENTION_TYPES = ["llama", "qwen2", "qwen3", "gemma3_text", "gpt_oss", "mistral", "deepseek_v3", "llama4_text"]


@pytest.mark.parametrize("model_type", MIXING_TYPES)
def test_every_config_style_of_a_mixing_decoder_is_recognised(model_type):
    assert mixing_reasons(CONFIG_MAPPING[model_type]())


@pytest.mark.parametrize("model_type", ATTENTION_TYPES)
def test_attention_decoders_pack(model_type):
    check_packable_decoder(CONFIG_MAPPING[model_type]())


def test_older_config_styles_name_their_layers():
    """Remote-code checkpoints may carry only `layers_block_type` or Nemotron-H's `hybrid_override_pattern`."""
    assert decoder_layer_types(PretrainedConfig(layers_block_type=["attention", "mamba"])) == ["attention", "mamba"]
    assert decoder_layer_types(PretrainedConfig(hybrid_override_pattern="M-M*-")) == ["mamba"]
    assert mixing_reasons(PretrainedConfig(hybrid_override_pattern="M-M*-"))


def _config(path, **keys):
    return build_config({"model_name_or_path": str(path), "template": "chatml", "stage": "sft",
                         "dataset_dir": str(refdata("llamafactory_data")), "dataset": "alpaca_en_demo",
                         "output_dir": str(path / "out"), **keys})


@pytest.mark.parametrize(("family", "kinds"), [("lfm2", "short-convolution"),
                                               ("qwen3_next", "linear-attention"),
                                               ("granitemoehybrid", "linear-attention")])
def test_preflight_refuses_packing_from_the_config_alone(tmp_path, family, kinds):
    path = save_tiny_checkpoint_files(tmp_path / family, family)  # config and tokenizer, no weights
    with pytest.raises(ConfigError, match=rf"`packing` cannot keep examples apart on `{family}` models: its "
                                          rf"decoder's {kinds}.* carry their state .*Set `packing: false`"):
        preflight(_config(path, packing=True), "check")
    with pytest.raises(ConfigError, match="cannot keep examples apart"):
        preflight(_config(path, neat_packing=True), "train")
    preflight(_config(path), "check")  # unpacked sft
    preflight(_config(path, stage="pt", dataset="c4_demo"), "check")  # pt's document stream, packed by default


@pytest.mark.slow
def test_lmforge_check_and_train_refuse_a_packed_lfm2_before_loading(tmp_path):
    path = save_tiny_checkpoint_files(tmp_path / "lfm2", "lfm2")  # no weights: a load would fail differently
    run = tmp_path / "run.yaml"
    run.write_text(f"model_name_or_path: {path}\ntemplate: chatml\nstage: sft\npacking: true\n"
                   f"dataset: alpaca_en_demo\ndataset_dir: {refdata('llamafactory_data')}\n"
                   f"output_dir: {tmp_path / 'out'}\n")
    for command in ("check", "train"):
        result = run_cli(command, str(run))
        message = " ".join(result.stderr.split())
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert ("`packing` cannot keep examples apart on `lfm2` models: its decoder's short-convolution layers carry "
                "their state from the end of one packed example into the next (layer kinds `conv`") in message
        assert "Set `packing: false`" in message and "`stage: pt`" in message
    assert not (tmp_path / "out").exists()

