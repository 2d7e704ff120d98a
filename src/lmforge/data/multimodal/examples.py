"""One multimodal example -> token ids, labels and its processed media, decoding each file once.

SFT conversations go through the chat template after the plugin has replaced their placeholders
with the model's token runs; pretraining documents (text with `<image>` placeholders, `stage: pt`)
are tokenized whole, every token supervised except the media tokens. Truncation to `cutoff_len`
follows the text SFT policy but never cuts through a media item's tokens: such an example fails
with its row and the length it needs. Rows travel through `datasets` as one JSON column
(`mm_example`), so examples are decoded only when a batch is built.
"""

import json
from dataclasses import dataclass, field, replace
from typing import Any

from lmforge.data.conversation import Conversation, LabeledConversation, Preference
from lmforge.data.labels import IGNORE_INDEX
from lmforge.data.multimodal.media import DecodedMedia, MediaError, MediaOptions, decode_media
from lmforge.data.multimodal.plugin import (
    PLACEHOLDERS,
    MMPlugin,
    ProcessedMedia,
    check_placeholders,
    count_placeholders,
)
from lmforge.data.multimodal.video_sound import pair_video_sounds
from lmforge.data.processors.sft import example_from_encoded
from lmforge.data.templates.encoding import encode_conversation
from lmforge.data.templates.messages import message_from_record, message_record
from lmforge.data.templates.template import Message, Template, Thinking
from lmforge.errors import ConfigError

ROW_COLUMN = "mm_example"


@dataclass(frozen=True)
class Document:
    """A pretraining document: text with media placeholders and the media it refers to."""

    text: str
    source: str
    media: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class MediaPreference:
    """A ranking row with media: its prompt's placeholders refer to `media`, shared by both answers."""

    preference: Preference
    media: dict[str, list[str]] = field(default_factory=dict)

    @property
    def source(self) -> str:
        return self.preference.source


@dataclass
class MMExample:
    input_ids: list[int]
    labels: list[int]
    processed: ProcessedMedia
    position_ids: Any  # (3, length) M-RoPE ids where the plugin has them, else None
    truncated: bool = False


MMItem = Conversation | Document | MediaPreference | LabeledConversation


def to_row(item: MMItem) -> dict[str, str]:
    """A conversation, document, ranking row or KTO row (a conversation whose last answer is labeled) as a
    `datasets` row (checked placeholders, media paths, no pixels)."""
    label = None
    if isinstance(item, LabeledConversation):
        item, label = item.conversation, item.desirable
    if isinstance(item, MediaPreference):
        pref = item.preference
        check_placeholders(pref.prompt, item.media, pref.source)
        body: dict[str, Any] = {"prompt": [message_record(m) for m in pref.prompt], "system": pref.system,
                                "chosen": pref.chosen, "rejected": pref.rejected, "source": pref.source,
                                "media": item.media, "tools": pref.tools}
    elif isinstance(item, Document):
        check_placeholders([item.text], item.media, item.source)
        body = {"text": item.text, "source": item.source, "media": item.media}
    else:
        check_placeholders(item.messages, item.media, item.source)
        body = {"messages": [message_record(m) for m in item.messages], "system": item.system,
                "source": item.source, "media": item.media, "tools": item.tools}
    if label is not None:
        body["label"] = label
    return {ROW_COLUMN: json.dumps(body)}


def from_row(row: dict[str, Any]) -> MMItem:
    body = json.loads(row[ROW_COLUMN])
    if "chosen" in body:
        prompt = [message_from_record(record) for record in body["prompt"]]
        return MediaPreference(Preference(prompt, body["system"], body["chosen"], body["rejected"], body["source"],
                                          tools=body["tools"]), body["media"])
    if "text" in body:
        return Document(body["text"], body["source"], body["media"])
    messages = [message_from_record(record) for record in body["messages"]]
    conversation = Conversation(messages, body["system"], body["source"], tools=body["tools"], media=body["media"])
    return LabeledConversation(conversation, body["label"]) if "label" in body else conversation


def split_answer(conversation: Conversation) -> tuple[Conversation, str]:
    """A KTO row's prompt (with its media) and the last answer, which its label is about."""
    *prompt, last = conversation.messages
    if last.role != "assistant" or not prompt:
        raise MediaError(f"{conversation.source}: a KTO row must end with the assistant answer it labels")
    return replace(conversation, messages=prompt), last.content


def _ending_with_the_answer(example: MMExample) -> MMExample:
    """`example` up to the end of its answer (its end-of-turn token included): what the template writes after
    the last turn is no part of a ranked or labeled answer, and a reward head reads the last token."""
    end = next((i + 1 for i in range(len(example.labels) - 1, -1, -1) if example.labels[i] != IGNORE_INDEX),
               len(example.labels))
    positions = example.position_ids[..., :end] if example.position_ids is not None else None
    return replace(example, input_ids=example.input_ids[:end], labels=example.labels[:end], position_ids=positions)


@dataclass
class MMEncoder:
    """Builds examples for one model: its processor (tokenizer inside), plugin and chat template."""

    processor: Any
    plugin: MMPlugin
    template: Template | None
    options: MediaOptions
    cutoff_len: int
    train_on_prompt: bool = False
    mask_history: bool = False
    model_config: Any = None  # what some 3-D positions need (Qwen2.5-VL's tokens_per_second for videos)
    media_cache: Any = None  # a `MediaCache`: each example's media processed once across epochs and runs
    enable_thinking: Thinking | None = None  # the thinking policy of the text rows (`enable_thinking`)
    positions: bool = True  # each example's 3-D M-RoPE positions: packed rows need them; unpacked ones leave them
    # to the model's forward, which derives the same from the ids (as LLaMA-Factory does), so they are not built

    def __post_init__(self) -> None:
        if self.options.use_audio_in_video and not self.plugin.video_sound:
            raise ConfigError(f"`use_audio_in_video: true` needs a model that interleaves a video's sound with its "
                              f"frames (Qwen2.5-Omni, Qwen3-Omni); `{self.plugin.name}` models do not: set "
                              "`use_audio_in_video: false`" + (" (give the sound as its own `<audio>` item)"
                                                              if "audios" in self.plugin.markers else ""))

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer

    def with_video_sounds(self, item: Conversation | Document) -> Conversation | Document:
        """`item` with each video's sound paired to it (`use_audio_in_video`, see `video_sound.py`)."""
        if not self.options.use_audio_in_video:
            return item
        if isinstance(item, Document):
            [text], media = pair_video_sounds([item.text], item.media, item.source)
            return replace(item, text=text, media=media)
        texts, media = pair_video_sounds([m.content for m in item.messages], item.media, item.source)
        return replace(item, messages=[replace(m, content=text) for m, text in zip(item.messages, texts, strict=True)],
                       media=media)

    def encode(self, item: Conversation | Document, processed: ProcessedMedia | None = None) -> MMExample:
        """One example; `processed`: its media already processed (a ranking row's second answer)."""
        if processed is None:
            item = self.with_video_sounds(item)
            processed = self.process(item.media, item.source)
        if isinstance(item, Document):
            input_ids, labels, truncated, full = self._document(item, processed)
        else:
            input_ids, labels, truncated, full = self._conversation(item, processed)
        media_ids = self.plugin.media_token_ids(self.tokenizer)
        kept = sum(token in media_ids for token in input_ids)
        needed = sum(token in media_ids for token in full)
        if kept != needed:
            raise MediaError(f"{item.source}: cutoff_len {self.cutoff_len} cuts through its media tokens (the "
                             f"example needs {len(full)} tokens); raise cutoff_len or lower image_max_pixels")
        input_ids, labels = self.plugin.process_token_ids(input_ids, labels, processed, self.tokenizer)
        labels = [IGNORE_INDEX if token in media_ids else label for token, label in zip(input_ids, labels, strict=True)]
        positions = (self.plugin.position_ids(input_ids, processed, self.processor, self.model_config)
                     if processed.runs and self.positions else None)
        return MMExample(input_ids, labels, processed, positions, truncated)

    def process(self, media: dict[str, list[Any]], where: str) -> ProcessedMedia:
        """An example's media decoded and processed (each item once), or the cached result of doing so."""
        if not media:
            return self.plugin.process_media(self.processor, DecodedMedia(), where)
        key = self.media_cache.key(media) if self.media_cache is not None else None
        if key is not None and (cached := self.media_cache.get(key)) is not None:
            return cached
        processed = self.plugin.process_media(self.processor, decode_media(media, self.options, where), where)
        if key is not None:
            self.media_cache.put(key, processed)
        return processed

    def media_tokens(self, item: MMItem) -> int:
        """How many media tokens an example's media expand to (processed, and cached, as its batch will be)."""
        media = item.media
        if self.options.use_audio_in_video:  # its batches process each video with its sound
            texts = ([m.content for m in item.preference.prompt] if isinstance(item, MediaPreference)
                     else [item.text] if isinstance(item, Document)
                     else [m.content for m in (item.conversation if isinstance(item, LabeledConversation)
                                               else item).messages])
            media = pair_video_sounds(texts, media, item.source)[1]
        processed = self.process(media, item.source)
        media_ids = self.plugin.media_token_ids(self.tokenizer)
        return sum(token in media_ids for runs in processed.runs.values() for run in runs
                   for token in self.tokenizer.encode(run, add_special_tokens=False))

    def prompt(self, messages: list[Message], media: dict[str, list[Any]], *, system: str | None = None,
               where: str = "prompt", tools: list[dict[str, Any]] | None = None,
               enable_thinking: Thinking | None = None) -> MMExample:
        """A chat prompt ending with the assistant header, for generation (chat, the API). Media items may
        be paths, URLs (with `allow_remote_media`), bytes or PIL images; with no placeholder in the
        messages, the placeholders are put in front of the last user message, in the order given.
        `tools` and `enable_thinking` are rendered as for a text prompt (`encode_conversation`)."""
        if not any(count_placeholders(messages, kind) for kind in media) and messages:
            last = max(i for i, m in enumerate(messages) if m.role == "user")
            lead = "".join(PLACEHOLDERS[kind] * len(items) for kind, items in media.items())
            messages = [*messages[:last], Message("user", lead + messages[last].content), *messages[last + 1:]]
        check_placeholders(messages, media, where)
        sounded = self.with_video_sounds(Conversation(messages, system, where, media=media))
        messages, media = sounded.messages, sounded.media
        processed = self.plugin.process_media(self.processor, decode_media(media, self.options, where), where)
        expanded = self.plugin.process_messages(messages, processed, where)
        ids = encode_conversation(self.template, self.tokenizer, expanded, system=system, tools=tools,
                                  add_generation_prompt=True, enable_thinking=enable_thinking).flat()
        ids, labels = self.plugin.process_token_ids(ids, [IGNORE_INDEX] * len(ids), processed, self.tokenizer)
        return MMExample(ids, labels, processed, None)

    def encode_pair(self, item: MediaPreference) -> tuple[MMExample, MMExample]:
        """The chosen and the rejected conversation, sharing one decoding and processing of the media."""
        pref = item.preference
        chosen, rejected = self.encode_answers(Conversation(pref.prompt, pref.system, pref.source, media=item.media),
                                               [pref.chosen, pref.rejected])
        return chosen, rejected

    def encode_answers(self, prompt: Conversation, answers: list[str]) -> list[MMExample]:
        """`prompt` (ending with a user turn) followed by each answer, sharing one decoding and processing of its
        media; only the answer is supervised (earlier assistant turns are prompt), as in the text preference
        rows (rm, dpo, kto)."""
        prompt = self.with_video_sounds(prompt)
        processed = self.process(prompt.media, prompt.source)
        last_only = replace(self, mask_history=True, train_on_prompt=False)
        return [_ending_with_the_answer(last_only.encode(
                    replace(prompt, messages=[*prompt.messages, Message("assistant", answer)]), processed))
                for answer in answers]

    def _conversation(self, conversation: Conversation,
                      processed: ProcessedMedia) -> tuple[list[int], list[int], bool, list[int]]:
        if self.template is None:
            raise MediaError(f"{conversation.source}: conversations need a chat template")
        messages = self.plugin.process_messages(conversation.messages, processed, conversation.source)
        rendering = dict(system=conversation.system, tools=conversation.tools, enable_thinking=self.enable_thinking)
        examples = self.template.examples(messages, mask_history=self.mask_history, train=True,
                                          bos_token=self.tokenizer.bos_token or "",
                                          eos_token=self.tokenizer.eos_token or "", **rendering)
        if len(examples) > 1:  # `template: auto` on a template that rewrites history (Qwen3-VL drops thoughts)
            raise MediaError(f"{conversation.source}: the model's template writes earlier answers differently from "
                             f"how it generates them, so this conversation trains as {len(examples)} examples, and "
                             "a multimodal row trains as one: set `mask_history: true` (the last answer only) or "
                             "train with a registered template (`template: NAME`)")
        encoded = encode_conversation(self.template, self.tokenizer, messages, train=True, **rendering)
        example = example_from_encoded(encoded, cutoff_len=self.cutoff_len, train_on_prompt=self.train_on_prompt,
                                       mask_history=self.mask_history)
        return example.input_ids, example.labels, example.truncated, encoded.flat()

    def _document(self, document: Document, processed: ProcessedMedia) -> tuple[list[int], list[int], bool, list[int]]:
        [message] = self.plugin.process_messages([Message("user", document.text)], processed, document.source)
        full = self.tokenizer.encode(message.content, add_special_tokens=True)
        if self.tokenizer.eos_token_id is not None:
            full.append(self.tokenizer.eos_token_id)
        ids = full[: self.cutoff_len]
        return ids, list(ids), len(full) > self.cutoff_len, full
