"""The template/checkpoint cross-check before any weight loads, family by family: a text template on a VLM,
a VLM template on its text-only sibling, a thinking template on a non-thinking checkpoint. The checkpoints are
tiny families' config.json and tokenizer/processor files (lmforge.testing), no weights."""

import json

import pytest

from lmforge.config import build_config
from lmforge.data.templates import get_template
from lmforge.errors import TemplateError
from lmforge.model.fit import check_model_fit
from lmforge.preflight import preflight
from lmforge.testing.checkpoint_files import save_tiny_checkpoint_files


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A function: (family, vlm, extra special tokens, chat template) -> folder (saved once per module)."""
    saved = {}

    def get(family: str, vlm: bool = False, tokens: tuple[str, ...] = (), chat_template: str | None = None):
        key = (family, vlm, tokens, chat_template)
        if key not in saved:
            saved[key] = save_tiny_checkpoint_files(tmp_path_factory.mktemp(family), family, vlm=vlm,
                                                    extra_special_tokens=tokens, chat_template=chat_template)
        return saved[key]

    return get


def fit(path, template: str, **keys):
    cfg = build_config({"model_name_or_path": str(path), "template": template, **keys})
    return check_model_fit(cfg.model, cfg.finetuning, get_template(template), "chat")


# tiny VLM family -> the registered multimodal template(s) the fix names for it (from its processor class)
VLM_FIXES = {
    "qwen2_vl": "`qwen2_vl`, `keye_vl`, `mimo_vl`", "qwen2_5_vl": "`qwen2_vl`, `keye_vl`, `mimo_vl`",
    "llava": "`llava`, `yi_vl`", "gemma3": "`gemma3`",
    "llava_next": "`llava_next`, `granite3_vision`, `llava_next_llama3`, `llava_next_mistral`, `llava_next_qwen`, "
                  "`llava_next_yi`",
    "pixtral": "`pixtral`, `ministral3`, `ministral3_reasoning`, `mistral_small_vision`",
    "paligemma": "`paligemma`, `paligemma_chat`",
    "intern_vl": "`intern_vl`, `intern_s1`, `intern_vl_hf`", "llama4": "`llama4`", "mllama": "`mllama`",
    "qwen2_audio": "`qwen2_audio`",
}


def listed(family):
    """The fix as the message lists it: the family's templates in name order (its plugin's own first above)."""
    return ", ".join(sorted(VLM_FIXES[family].split(", "), key=lambda name: name.strip("`")))


@pytest.mark.parametrize("family", sorted(VLM_FIXES))
def test_a_text_template_on_a_vlm_fails_naming_the_familys_multimodal_template(checkpoint, family):
    path = checkpoint(family, vlm=True)
    with pytest.raises(TemplateError) as err:
        fit(path, "chatml")
    message = str(err.value)
    assert message.startswith(f"template `chatml` is a text template, but {path} is a vision/audio-language "
                              "checkpoint (")
    assert message.endswith(f"Set `template:` to the family's multimodal template (one of {listed(family)})")
    own = VLM_FIXES[family].split(",")[0].strip("`")
    assert fit(path, own).is_multimodal  # the family's own template passes


@pytest.mark.parametrize(("family", "template"), [("gemma3", "qwen2_vl"), ("qwen2_vl", "gemma3"),
                                                 ("mllama", "llava"), ("qwen2_audio", "qwen2_vl")])
def test_a_vlm_template_of_another_family_fails_naming_the_right_one(checkpoint, family, template):
    path = checkpoint(family, vlm=True)
    with pytest.raises(TemplateError) as err:
        fit(path, template)
    own = listed(family)
    plugin = VLM_FIXES[family].split(",")[0].strip("`")
    assert str(err.value).startswith(f"template `{template}` is made for `{get_template(template).mm_plugin}` "
                                     "models, but the model's processor (")
    assert f"is served by the `{plugin}` plugin: its image/audio tokens would not be what the template expects " \
           f"({path}: " in str(err.value)
    assert str(err.value).endswith(f"Set `template:` to the family's multimodal template (one of {own})")


# text-only checkpoint -> the multimodal template of its vision sibling (the Gemma-3 1B vs 4B trap and cousins)
SIBLINGS = [("gemma3_text", "gemma3", "gemma2"), ("qwen2", "qwen2_vl", "qwen2"), ("llama", "mllama", "llama3"),
            ("llama", "llama4", "llama3"), ("llama", "llava", "llama3"), ("mistral", "pixtral", "mistral_small"),
            ("gemma2", "paligemma", "gemma2")]


@pytest.mark.parametrize(("family", "vlm_template", "text_template"), SIBLINGS)
def test_a_vlm_template_on_its_text_only_sibling_fails_with_the_fix(checkpoint, family, vlm_template, text_template):
    path = checkpoint(family)
    with pytest.raises(TemplateError, match=rf"template `{vlm_template}` is a multimodal template, but {path} is a "
                                            r"decoder-only \(causal\) language model .* with no vision or audio "
                                            r"encoder in its config. Set `template:` to the family's text template "
                                            r"\(`template: auto` for the checkpoint's own chat template"):
        fit(path, vlm_template)
    assert not fit(path, text_template).is_multimodal


def test_the_seed_trap_through_preflight(checkpoint):
    """Gemma-3 1B is Gemma3ForCausalLM; LLaMA-Factory's multimodal gemma3 template on it fails in `lmforge check`."""
    cfg = build_config({"model_name_or_path": str(checkpoint("gemma3_text")), "template": "gemma3"})
    with pytest.raises(TemplateError, match=r"is a decoder-only \(causal\) language model \(Gemma3ForCausalLM.*"
                                            r"Gemma-3 1B takes `gemma2`, not `gemma3`"):
        preflight(cfg, "chat")


def test_vlm_is_read_from_the_config_not_the_name(checkpoint, tmp_path):
    """A checkpoint transformers does not map as a VLM (remote code) is one when its config has a vision tower."""
    path = checkpoint("llama")
    folder = tmp_path / "remote-vlm"
    folder.mkdir()
    for file in path.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "vision_config": {"hidden_size": 32}}))
    with pytest.raises(TemplateError, match=r"is a vision/audio-language checkpoint \(its config.json has "
                                            r"`vision_config`\)"):
        fit(folder, "llama3")


def test_a_vlm_loaded_as_a_causal_lm_takes_a_text_template(checkpoint):
    """`model_class: AutoModelForCausalLM` trains a VLM's language model on text: the class set decides."""
    assert not fit(checkpoint("gemma3", vlm=True), "gemma2", model_class="AutoModelForCausalLM").is_multimodal


THINKING = ["qwen3", "qwen3_nothink", "qwq", "deepseekr1", "phi4_reasoning", "nemotron_nano_v2", "gpt_oss"]


@pytest.mark.parametrize("template", THINKING)
def test_a_thinking_template_on_a_non_thinking_checkpoint_fails_with_the_fix(checkpoint, template):
    path = checkpoint("qwen2")  # Qwen2.5-like: no think token, a chat template that never writes one
    with pytest.raises(TemplateError) as err:
        fit(path, template)
    message = str(err.value)
    assert f"template `{template}` writes thoughts in `" in message and f"but {path} is not a thinking checkpoint" \
        in message
    assert "Set `template:` to a template without thoughts (`template: auto` for the checkpoint's own" in message
    markup = "<|channel|>,<|message|>,<|end|>,<|start|>" if template == "gpt_oss" else "<think>,</think>"
    assert message.endswith(f"add the markup as tokens: `add_special_tokens: {markup}`")


def test_a_thinking_template_fits_a_checkpoint_that_knows_its_markup(checkpoint):
    fit(checkpoint("qwen2", tokens=("<think>", "</think>")), "qwen3")  # the tokens (Qwen3, QwQ, R1 distills)
    fit(checkpoint("qwen2", tokens=("<|channel|>", "<|message|>", "<|start|>", "<|end|>")), "gpt_oss")
    own = "{% for m in messages %}{{ m['content'] }}{% endfor %}{% if add_generation_prompt %}<think>\n{% endif %}"
    fit(checkpoint("qwen2", chat_template=own), "qwq")  # its own chat template writes the markup
    fit(checkpoint("qwen2"), "qwen3", add_special_tokens="<think>,</think>")  # teaching it to reason: allowed
    fit(checkpoint("qwen2"), "qwen")  # and a template without thoughts, of course


def test_the_fix_names_the_model_registrys_template_when_it_fits(checkpoint, monkeypatch):
    from lmforge.hub import registry

    monkeypatch.setattr(registry.MODELS, "_entries", dict(registry.MODELS._entries))  # registrations end here
    registry.register_model_group(models={"Tiny-Qwen2.5-For-Test": {"local": str(checkpoint("qwen2"))}},
                                  template="qwen")
    with pytest.raises(TemplateError, match=r"without thoughts \(`template: qwen` \(the model registry's for "
                                            r"Tiny-Qwen2.5-For-Test\), or `template: auto`"):
        fit("Tiny-Qwen2.5-For-Test", "qwen3")
    registry.register_model_group(models={"Tiny-Thinker-For-Test": {"local": str(checkpoint("qwen2"))}},
                                  template="qwq")  # a wrong registration is not offered as the fix
    with pytest.raises(TemplateError, match=r"without thoughts \(`template: auto`"):
        fit("Tiny-Thinker-For-Test", "qwen3")
