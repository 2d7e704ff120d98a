"""The multimodal plugin interface and its registry.

A plugin knows three things about a model family:

- `process_messages`: replace each `<image>` / `<video>` / `<audio>` placeholder in the messages
  with the model's own token run for that item (`<|vision_start|><|image_pad|>...<|vision_end|>`);
- `process_token_ids`: token-level edits some families need (PaliGemma's image prefix);
- `get_mm_inputs`: the processor tensors of a batch (pixel values, grids, masks, token types).

The token runs and the tensors come from ONE call of the family's real processor per media item
(`process_media`): the processor expands its own marker (`marker`) and returns the tensors, so
the runs are exactly what the model's processor produces and each item is processed once.
Subclasses set the markers and the processor argument names, and override what differs.
"""

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from lmforge.data.multimodal.media import DecodedMedia, MediaError
from lmforge.data.templates.template import Message
from lmforge.registry import Registry

PLACEHOLDERS = {"images": "<image>", "videos": "<video>", "audios": "<audio>"}
PROCESSOR_ARGUMENT = {"images": "images", "videos": "videos", "audios": "audio"}
TEXT_KEYS = ("input_ids", "attention_mask", "token_type_ids", "mm_token_type_ids", "labels")


@dataclass
class ProcessedMedia:
    """One example's media after the processor: the token run text and the tensors of each item."""

    runs: dict[str, list[str]] = field(default_factory=dict)  # kind -> run text per item, in order
    tensors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # kind -> tensors per item


def count_placeholders(messages: list[Message] | list[str], kind: str) -> int:
    texts = [m.content if isinstance(m, Message) else m for m in messages]
    return sum(text.count(PLACEHOLDERS[kind]) for text in texts)


def check_placeholders(texts: list[Message] | list[str], media: dict[str, list[Any]], where: str) -> None:
    """Each kind's placeholder count must equal its number of media items."""
    for kind, placeholder in PLACEHOLDERS.items():
        found, given = count_placeholders(texts, kind), len(media.get(kind, []))
        if found != given:
            raise MediaError(f"{where}: {found} `{placeholder}` placeholder(s) in the messages but {given} "
                             f"{kind} given; each {kind[:-1]} needs exactly one `{placeholder}` where it goes")


class MMPlugin:
    name: ClassVar[str]
    processor_classes: ClassVar[tuple[str, ...]] = ()  # processor class names this plugin serves
    markers: ClassVar[dict[str, str]] = {}  # kind -> the text the processor expands into a run
    media_tokens: ClassVar[dict[str, int]] = {}  # token standing for media features -> its token type
    token_type_key: ClassVar[str | None] = None  # model input marking media tokens, built from the final ids
    no_packing_reason: ClassVar[str] = ""  # why this plugin's packed examples would not stay apart (packability.py
    # adds what the model itself does)
    computes_positions: ClassVar[bool] = False  # `position_ids` gives each example its own 3-D M-RoPE positions
    token_types_unread: ClassVar[bool] = False  # the model takes `token_type_key` but never reads it (Gemma 3n)
    fallback: ClassVar[bool] = False  # looked up after every plugin that names its processor classes
    video_sound: ClassVar[bool] = False  # takes a video's sound interleaved with its frames (`use_audio_in_video`)

    @property
    def supports_packing(self) -> bool:
        """This plugin's own answer, before the model is known (`packability.packing_refusal` has the model's)."""
        return not self.no_packing_reason

    def for_processor(self, processor: Any) -> "MMPlugin | None":
        """This plugin, configured for `processor`, when it serves it; else None."""
        return self if type(processor).__name__ in self.processor_classes else None

    # -- per example -------------------------------------------------------------------------
    def processor_kwargs(self, kind: str, item: Any, media: DecodedMedia, index: int) -> dict[str, Any]:
        return {PROCESSOR_ARGUMENT[kind]: [item]}

    def process_media(self, processor: Any, media: DecodedMedia, where: str) -> ProcessedMedia:
        """One processor call per item: its expanded run (as text) and its tensors."""
        processed = ProcessedMedia()
        unsupported = [kind for kind in PLACEHOLDERS if media.items(kind) and kind not in self.markers]
        if unsupported:
            raise MediaError(f"{where}: has {', '.join(unsupported)}, which `{self.name}` models do not take "
                             f"(they take {', '.join(self.markers)})")
        for kind, marker in self.markers.items():
            runs, tensors = [], []
            for index, item in enumerate(media.items(kind)):
                try:
                    out = processor(text=[marker], return_tensors="pt", add_special_tokens=False,
                                    **self.processor_kwargs(kind, item, media, index))
                except (ValueError, RuntimeError) as err:
                    raise MediaError(f"{where}: the processor rejected {media.describe(kind, index)}: {err}") from None
                runs.append(self.run_text(processor, out["input_ids"][0].tolist()))
                tensors.append({k: v for k, v in out.items() if k not in TEXT_KEYS})
            if runs:
                processed.runs[kind], processed.tensors[kind] = runs, tensors
        return processed

    def run_text(self, processor: Any, ids: list[int]) -> str:
        return processor.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def process_messages(self, messages: list[Message], processed: ProcessedMedia, where: str) -> list[Message]:
        """Replace the placeholders, in order, with each item's token run."""
        check_placeholders(messages, {kind: runs for kind, runs in processed.runs.items()}, where)
        pending = {kind: iter(runs) for kind, runs in processed.runs.items()}
        out: list[Message] = []
        for message in messages:
            content = message.content
            for kind, runs in pending.items():  # split first: a run may contain the placeholder (LLaVA's `<image>`)
                pieces = content.split(PLACEHOLDERS[kind])
                content = pieces[0] + "".join(next(runs) + piece for piece in pieces[1:])
            out.append(replace(message, content=content))  # tool calls stay with their turn
        return out

    def process_token_ids(self, input_ids: list[int], labels: list[int], processed: ProcessedMedia,
                          tokenizer: Any) -> tuple[list[int], list[int]]:
        return input_ids, labels

    # -- per batch ---------------------------------------------------------------------------
    def get_mm_inputs(self, examples: list[ProcessedMedia], batch: dict[str, Any], tokenizer: Any) -> dict[str, Any]:
        """The batch's processor tensors: each key concatenated over the items of all examples, in order.

        `examples` are the batch's examples in the order their tokens appear in `batch["input_ids"]`.
        """
        inputs: dict[str, Any] = {}
        # example by example: kinds that share a key (InternVL's images and video frames) stay in their example
        items = [item for example in examples for kind in self.markers for item in example.tensors.get(kind, [])]
        for key in dict.fromkeys(k for item in items for k in item):
            inputs[key] = concat_padded([item[key] for item in items if key in item])
        if self.token_type_key:
            inputs[self.token_type_key] = self.token_type_ids(batch["input_ids"], tokenizer)
        return inputs

    def token_type_ids(self, input_ids: Any, tokenizer: Any) -> Any:
        import torch

        types = torch.zeros_like(input_ids)
        for token, value in self.media_tokens.items():
            types[input_ids == tokenizer.convert_tokens_to_ids(token)] = value
        return types

    def media_token_ids(self, tokenizer: Any) -> set[int]:
        """Ids that stand for media features; never supervised."""
        return {tokenizer.convert_tokens_to_ids(token) for token in self.media_tokens}

    def position_ids(self, input_ids: list[int], processed: ProcessedMedia, processor: Any,
                     model_config: Any = None) -> Any:
        """Position ids of one example, for packed rows; None means 0, 1, 2, ..."""
        return None


def concat_padded(tensors: list[Any]) -> Any:
    """Concatenate along dim 0, zero-padding the other dims to the largest (e.g. LLaVA-NeXT's patch counts)."""
    import torch

    if all(t.shape[1:] == tensors[0].shape[1:] for t in tensors):
        return torch.cat(tensors)
    shape = [max(t.shape[d] for t in tensors) for d in range(1, tensors[0].dim())]
    padded = []
    for tensor in tensors:
        out = tensor.new_zeros((tensor.shape[0], *shape))
        out[tuple(slice(0, s) for s in tensor.shape)] = tensor
        padded.append(out)
    return torch.cat(padded)


# the builtin plugins are the modules of `plugins/`, registered on first lookup
MM_PLUGINS: Registry[MMPlugin] = Registry("multimodal plugin", MediaError, package="lmforge.data.multimodal.plugins")


def register_mm_plugin(plugin_class: type[MMPlugin]) -> type[MMPlugin]:
    """Class decorator: register a plugin under its `name`."""
    MM_PLUGINS.register(plugin_class.name, plugin_class())
    return plugin_class


def get_mm_plugin(name: str) -> MMPlugin:
    return MM_PLUGINS.get(name)


def mm_plugin_for(processor: Any) -> MMPlugin | None:
    """The plugin serving this processor: one written for its class, else the processor-native one
    (any processor that expands its own media tokens); None for a plain tokenizer."""
    ordered = sorted(MM_PLUGINS.entries(), key=lambda plugin: plugin.fallback)
    return next((found for plugin in ordered if (found := plugin.for_processor(processor)) is not None), None)


def plugin_for_template(processor: Any, template: Any | None) -> MMPlugin:
    """The plugin serving `processor`, checked against the plugin the chat template is made for
    (`Template.mm_plugin`; "base", as `template: auto` has, takes the processor's). The processor-native
    plugin serves any template made for a family no hand-written plugin claims."""
    from lmforge.errors import TemplateError

    plugin = mm_plugin_for(processor)
    wanted = template.mm_plugin if template is not None else "base"
    if plugin is None:
        have = ", ".join(MM_PLUGINS.names())
        also = (f"; template `{template.name}` is made for `{wanted}` models, which lmforge has no plugin for yet"
                if wanted != "base" and wanted not in MM_PLUGINS else "")
        raise MediaError(f"{type(processor).__name__} is not a multimodal processor lmforge has a plugin for "
                         f"(plugins: {have}){also}")
    if wanted not in ("base", plugin.name) and (not plugin.fallback or wanted in MM_PLUGINS):
        raise TemplateError(f"template `{template.name}` is made for `{wanted}` models, but the model's processor "
                            f"({type(processor).__name__}) is served by the `{plugin.name}` plugin: its image/audio "
                            f"tokens would not be what the template expects. Set `template:` to a template of the "
                            + ("model's family, or `auto` (the processor expands its own media tokens)"
                               if plugin.fallback else
                               f"model's family (one whose plugin is `{plugin.name}`; `lmforge template show NAME` "
                               "prints a template's plugin)"))
    return plugin
