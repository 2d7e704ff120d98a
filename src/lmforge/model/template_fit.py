"""Does the chat template fit the checkpoint? Checked from config.json and the tokenizer files, before any
weight loads, for every family.

Four traps, each a `TemplateError` that names the fix:

- a text template on a vision/audio-language checkpoint: its media would never reach the model;
- a multimodal template of another family (`qwen2_vl` on Gemma-3 4B): its media tokens are not the model's;
- a multimodal template on the text-only sibling (Gemma-3 1B is `Gemma3ForCausalLM`, 4B and up are
  `Gemma3ForConditionalGeneration`; Qwen2 beside Qwen2-VL; Llama 3 beside Llama 3.2 Vision ...);
- a thinking template on a checkpoint that has never seen its think markup (`qwen3` on Qwen2.5): the tokenizer
  has no such token and its own chat template never writes one.

"Is it multimodal" is read from the config (transformers' image-text / audio mapping of its `model_type`, a
`vision_config` / `audio_config`, or its `architectures`), never from the name.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmforge.data.templates.registry import TEMPLATES, list_templates
from lmforge.data.templates.template import Template
from lmforge.errors import TemplateError
from lmforge.hub.registry import find_model
from lmforge.model.kind import ModelKind

MEDIA_CONFIGS = ("vision_config", "audio_config", "visual", "vision_tower_config")
_MARKUP = re.compile(r"<[^<>\s]+>")  # `<think>`, `<|channel|>`: the special tokens a thought is opened with


@dataclass(frozen=True)
class CheckpointFiles:
    """The small files of a checkpoint: a local folder, or a hub repo (fetched as its tokenizer would be)."""

    folder: str
    revision: str | None = None
    cache_dir: str | None = None

    def read(self, name: str) -> str | None:
        folder = Path(self.folder)
        if folder.is_dir():
            return (folder / name).read_text(encoding="utf-8") if (folder / name).is_file() else None
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

        try:
            path = hf_hub_download(self.folder, name, revision=self.revision, cache_dir=self.cache_dir)
        except (EntryNotFoundError, HfHubHTTPError, OSError):
            return None
        return Path(path).read_text(encoding="utf-8")

    def json(self, name: str) -> dict[str, Any]:
        text = self.read(name)
        return json.loads(text) if text else {}


def multimodal_evidence(config: Any, kind: ModelKind, forced: bool = False) -> str | None:
    """Why the checkpoint takes images or audio (from its config), or None for a text-only checkpoint. With
    `forced` (`model_class` set: a VLM may be loaded as a causal LM to train on text) the class decides."""
    if kind.is_multimodal or forced:
        return f"{kind.architecture}: {kind.reason}" if kind.is_multimodal else None
    present = [key for key in MEDIA_CONFIGS if getattr(config, key, None)]
    if present:
        return f"its config.json has `{present[0]}`"
    from transformers.models.auto import modeling_auto as auto

    vlm_classes = {*auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES.values(),
                   *auto.MODEL_FOR_MULTIMODAL_LM_MAPPING_NAMES.values()}
    listed = [arch for arch in getattr(config, "architectures", None) or () if arch in vlm_classes]
    return f"its config.json lists the architecture {listed[0]}" if listed else None


def _registry_hint(model_name_or_path: str | None, template: Template, fits: Callable[[Template], bool]) -> str:
    """The model registry's template for this reference, when it names another registered one that `fits`."""
    registered = find_model(model_name_or_path)
    if (registered is None or not registered.template or registered.template == template.name
            or registered.template not in TEMPLATES or not fits(TEMPLATES.get(registered.template))):
        return ""
    return f"`template: {registered.template}` (the model registry's for {registered.name}), or "


def _is_multimodal(template: Template) -> bool:
    return template.multimodal


def _is_text(template: Template) -> bool:
    return not template.multimodal


def _thinks_not(template: Template) -> bool:
    return not template.thought_words


def _processor_class(config: Any, files: CheckpointFiles) -> str | None:
    """The checkpoint's processor class: the one its files name, else transformers' for its model_type."""
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

    named = (files.json(name).get("processor_class")
             for name in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"))
    return next((name for name in named if name), None) or PROCESSOR_MAPPING_NAMES.get(
        getattr(config, "model_type", ""))


def family_key(name: str) -> str:
    """A multimodal family's name as a processor class and a template's `mm_plugin` both spell it
    (`LlavaNext` and `llava_next`, `InternVL` and `intern_vl`)."""
    return name.lower().replace("_", "")


def _plugins_serving(processor: str | None) -> set[str]:
    """The `Template.mm_plugin` names made for this processor class: a hand-written plugin's that lists it, else
    the family the processor-native plugin serves it as (its class name: `LlavaNextProcessor` is `llava_next`)."""
    if processor is None:
        return set()
    from lmforge.data.multimodal.plugin import MM_PLUGINS

    written = {plugin.name for plugin in MM_PLUGINS.entries() if processor in plugin.processor_classes}
    family = family_key(processor.removesuffix("Processor"))
    return written or {t.mm_plugin for t in list_templates() if t.multimodal and family_key(t.mm_plugin) == family}


def _multimodal_templates_for(plugins: set[str]) -> list[str]:
    """Registered multimodal templates of these plugins, else every multimodal template."""
    multimodal = [t for t in list_templates() if t.multimodal]
    return sorted(t.name for t in multimodal if t.mm_plugin in plugins) or sorted(t.name for t in multimodal)


def check_modality(template: Template, config: Any, kind: ModelKind, files: CheckpointFiles, where: str,
                   model_name_or_path: str | None = None, forced: bool = False) -> None:
    """A text template on a vision/audio-language checkpoint, or a multimodal one on a text-only checkpoint."""
    evidence = multimodal_evidence(config, kind, forced)
    processor = _processor_class(config, files) if evidence else None
    plugins = _plugins_serving(processor)
    fitting = ", ".join(f"`{name}`" for name in _multimodal_templates_for(plugins)) if evidence else ""
    if evidence and not template.multimodal:
        raise TemplateError(
            f"template `{template.name}` is a text template, but {where} is a vision/audio-language checkpoint "
            f"({evidence}); its image/audio inputs would never reach it. Set `template:` to the family's "
            f"multimodal template ({_registry_hint(model_name_or_path, template, _is_multimodal)}one of {fitting})")
    if template.multimodal and not evidence:
        hint = _registry_hint(model_name_or_path, template, _is_text)
        raise TemplateError(
            f"template `{template.name}` is a multimodal template, but {where} is {kind.describe()} "
            f"({kind.architecture}: {kind.reason}) with no vision or audio encoder in its config. Set `template:` "
            f"to the family's text template ({hint}`template: auto` for "
            "the checkpoint's own chat template; Gemma-3 1B takes `gemma2`, not `gemma3`; Qwen2 `qwen2`, not "
            "`qwen2_vl`)")
    if evidence and plugins and template.mm_plugin not in plugins:  # a VLM template of another family
        raise TemplateError(
            f"template `{template.name}` is made for `{template.mm_plugin}` models, but the model's processor "
            f"({processor}) is served by the `{', '.join(sorted(plugins))}` plugin: its image/audio tokens would not "
            f"be what the template expects ({where}: {evidence}). Set `template:` to the family's multimodal template "
            f"({_registry_hint(model_name_or_path, template, lambda t: t.mm_plugin in plugins)}one of {fitting})")


def thought_opening(template: Template) -> str:
    """The text the template opens a thought with (`<think>`, `<|channel|>analysis<|message|>`); "" for none."""
    if not template.thought_words:
        return ""
    written = template.format_thought.split("{{content}}")[0].strip()
    return written or template.thought_words[0]


def checkpoint_vocabulary(files: CheckpointFiles) -> tuple[set[str], str] | None:
    """The checkpoint's token strings (vocabulary and added tokens) and its own chat template text, read from
    the tokenizer files; None when it has none lmforge can read (then nothing is checked)."""
    tokens: set[str] = set()
    chat = ""
    found = False
    tokenizer_json = files.read("tokenizer.json")
    if tokenizer_json:
        data, found = json.loads(tokenizer_json), True
        tokens.update(token["content"] for token in data.get("added_tokens") or ())
        vocab = (data.get("model") or {}).get("vocab") or {}
        tokens.update(vocab if isinstance(vocab, dict) else (piece for piece, _ in vocab))
    config_json = files.read("tokenizer_config.json")
    if config_json:
        data, found = json.loads(config_json), True
        tokens.update(entry["content"] for entry in (data.get("added_tokens_decoder") or {}).values())
        chats = data.get("chat_template") or ""
        chat += chats if isinstance(chats, str) else "".join(entry.get("template", "") for entry in chats)
    chat += files.read("chat_template.jinja") or ""
    return (tokens, chat) if found else None


def check_thinking(template: Template, vocabulary: tuple[set[str], str] | None, where: str,
                   added_tokens: list[str], model_name_or_path: str | None = None) -> None:
    """A thinking template on a checkpoint that has no token for its think markup and whose own chat template
    never writes it (`add_tokens` / `add_special_tokens` naming the markup lets it through: teaching a model
    to reason)."""
    opening = thought_opening(template)
    markup = _MARKUP.findall(opening)
    if not markup or vocabulary is None:
        return
    tokens, chat = vocabulary
    unknown = [word for word in markup if word not in tokens and word not in added_tokens]
    if not unknown or all(word in chat for word in markup):
        return
    closing = template.format_thought.split("{{content}}")[-1]
    hint = _registry_hint(model_name_or_path, template, _thinks_not)
    missing = ", ".join(f"`{word}`" for word in unknown) + (" tokens" if len(unknown) > 1 else " token")
    raise TemplateError(
        f"template `{template.name}` writes thoughts in `{opening}` blocks, but {where} is not a thinking "
        f"checkpoint: its tokenizer has no {missing} and its own chat template never writes one, so the markup "
        f"would be trained as plain text. Set `template:` to a template without thoughts ({hint}`template: auto` "
        "for the checkpoint's own chat template), or, to teach it to reason, add the markup as tokens: "
        f"`add_special_tokens: {','.join(dict.fromkeys([*markup, *_MARKUP.findall(closing)]))}`")


def check_template_fit(template: Template, config: Any, kind: ModelKind, folder: str, *, where: str,
                       model_name_or_path: str | None = None, added_tokens: list[str] | None = None,
                       revision: str | None = None, cache_dir: str | None = None, forced: bool = False) -> None:
    """Every template/checkpoint check, from config.json and the tokenizer files (no weights); `forced`: the
    kind comes from a `model_class` the config sets."""
    files = CheckpointFiles(folder, revision, cache_dir)
    check_modality(template, config, kind, files, where, model_name_or_path, forced)
    if template.thought_words:
        check_thinking(template, checkpoint_vocabulary(files), where, added_tokens or [], model_name_or_path)
