"""Batches of multimodal rows: each example's media decoded and processed once, then padded or packed.

Text-only rows and rows with media mix freely in one batch: the processor tensors hold only the
media that is there, and a batch without media gets no pixel tensors at all (no fake images).

With `packing`, the batch's examples are bin-packed into rows of at most `cutoff_len` tokens.
Examples are never split, so every image stays with its text; position ids restart at 0 for each
example (and, for M-RoPE models, the 3-D ids restart too, passed as (4, batch, length): the text
positions first, from which transformers derives the per-example attention, then the 3 axes).
"""

from dataclasses import dataclass
from typing import Any

import torch

from lmforge.config.data import DataGroup
from lmforge.data.conversation import LabeledConversation
from lmforge.data.labels import IGNORE_INDEX
from lmforge.data.multimodal.examples import MediaPreference, MMEncoder, MMExample, from_row, split_answer
from lmforge.data.multimodal.media import MediaError, MediaOptions
from lmforge.data.multimodal.media_cache import MediaCache
from lmforge.data.multimodal.packability import packing_refusal
from lmforge.data.multimodal.plugin import plugin_for_template
from lmforge.data.packing import pack_lengths


@dataclass
class MultimodalCollator:
    encoder: MMEncoder
    packing: bool = False
    pad_to_multiple_of: int | None = 8

    def __post_init__(self) -> None:
        if not self.packing:
            return
        plugin = self.encoder.plugin
        if self.encoder.model_config is None:  # what the model does decides (packability.py)
            raise MediaError("packing multimodal rows needs the model's config (`model_config` of the encoder)")
        if reason := packing_refusal(plugin, self.encoder.model_config):
            raise MediaError(f"packing is not supported for `{plugin.name}` models ({reason}); set `packing: false`")

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        items = [from_row(feature) for feature in features]
        if any(isinstance(item, MediaPreference) for item in items):
            return self.pairs(items)
        if any(isinstance(item, LabeledConversation) for item in items):
            return self.labeled(items)
        examples = [self.encoder.encode(item) for item in items]
        if self.packing:
            lengths = [len(example.input_ids) for example in examples]
            rows = [[examples[i] for i in sorted(members)]
                    for members in pack_lengths(lengths, self.encoder.cutoff_len)]
        else:
            rows = [[example] for example in examples]
        return self.collate(rows)

    def pairs(self, items: list[Any]) -> dict[str, torch.Tensor]:
        """Ranking rows: the chosen conversations, then the rejected ones (one forward pass for both,
        as trl's DPO does), each row's media decoded and processed once and used by both answers."""
        if self.packing:
            raise MediaError("packing applies to sft and pt rows, not to ranking rows")
        pairs = [self.encoder.encode_pair(item) for item in items]
        return self.collate([[chosen] for chosen, _ in pairs] + [[rejected] for _, rejected in pairs])

    def labeled(self, items: list[Any]) -> dict[str, torch.Tensor]:
        """KTO rows: each conversation with its last answer supervised, `label` (desirable or not), and as
        `KL_input_ids`, `KL_attention_mask`, `KL_labels` (and `KL_<token types>`) the same prompt with the
        answer of the batch's previous row: the mismatched pair of KTO's KL term, paired within the batch as
        trl pairs vision rows. Both halves share one processing of each row's media and are padded to one
        length, so the media tensors serve both forward passes."""
        if self.packing:
            raise MediaError("packing applies to sft and pt rows, not to KTO rows")
        prompts, answers = zip(*(split_answer(item.conversation) for item in items), strict=True)
        examples = [self.encoder.encode_answers(prompt, [answers[index], answers[index - 1]])
                    for index, prompt in enumerate(prompts)]
        length = max(len(example.input_ids) for pair in examples for example in pair)
        batch = self.collate([[own] for own, _ in examples], length)
        mismatched = self.collate([[kl] for _, kl in examples], length)
        for key in ("input_ids", "attention_mask", "labels", self.encoder.plugin.token_type_key):
            if key in mismatched:
                batch[f"KL_{key}"] = mismatched[key]
        batch["label"] = torch.tensor([item.desirable for item in items])
        return batch

    def collate(self, rows: list[list[MMExample]], length: int = 0) -> dict[str, torch.Tensor]:
        """`rows` padded to their longest (at least `length`), with the processor tensors of their media."""
        pad_id = self.encoder.tokenizer.pad_token_id
        longest = max(length, *(sum(len(e.input_ids) for e in row) for row in rows))
        if self.pad_to_multiple_of:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        size = (len(rows), longest)
        input_ids = torch.full(size, pad_id, dtype=torch.long)
        labels = torch.full(size, IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros(size, dtype=torch.long)
        mrope = any(e.position_ids is not None for row in rows for e in row)
        positions = torch.zeros((4 if mrope else 1, *size), dtype=torch.long)
        for index, row in enumerate(rows):
            ids = [t for e in row for t in e.input_ids]
            input_ids[index, : len(ids)] = torch.as_tensor(ids)
            labels[index, : len(ids)] = torch.as_tensor([t for e in row for t in e.labels])
            attention_mask[index, : len(ids)] = 1
            start = 0
            for example in row:
                length = len(example.input_ids)
                labels[index, start] = IGNORE_INDEX  # no example predicts the next one's first token
                positions[0, index, start:start + length] = torch.arange(length)
                if mrope:
                    positions[1:, index, start:start + length] = (
                        example.position_ids if example.position_ids is not None
                        else torch.arange(length).expand(3, -1))
                start += length
        batch = {"input_ids": input_ids, "labels": labels}
        if self.packing:  # no 2-D mask: transformers derives the per-example mask from the restarting positions
            batch["position_ids"] = positions if mrope else positions[0]
            batch["num_real_tokens"] = attention_mask.sum()
            batch["num_examples"] = torch.tensor(sum(map(len, rows)))
        else:
            batch["attention_mask"] = attention_mask
        processed = [example.processed for row in rows for example in row]
        batch.update(self.encoder.plugin.get_mm_inputs(processed, batch, self.encoder.tokenizer))
        return batch


def generation_inputs(encoder: MMEncoder, prompts: list[MMExample]) -> dict[str, torch.Tensor]:
    """Left-padded prompts (see `MMEncoder.prompt`) with their processor tensors, ready for `generate`."""
    longest = max(len(prompt.input_ids) for prompt in prompts)
    input_ids = torch.full((len(prompts), longest), encoder.tokenizer.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, prompt in enumerate(prompts):
        input_ids[row, longest - len(prompt.input_ids):] = torch.as_tensor(prompt.input_ids)
        attention_mask[row, longest - len(prompt.input_ids):] = 1
    batch = {"input_ids": input_ids, "attention_mask": attention_mask}
    batch.update(encoder.plugin.get_mm_inputs([p.processed for p in prompts], batch, encoder.tokenizer))
    return batch


def multimodal_collator(data: DataGroup, processor: Any, template: Any, model_config: Any = None, *,
                        packing: bool = False) -> MultimodalCollator:
    """The collator for a configured run: the processor's plugin, the media options, cutoff and packing.
    `model_config`: the model's config, which decides whether packing keeps examples apart and which some 3-D
    position ids need (Qwen2.5-VL videos)."""
    plugin = plugin_for_template(processor, template)
    options = MediaOptions.from_config(data)
    cache = (MediaCache(processor, plugin.name, options, max_bytes=int(data.media_cache_max_gb * 1e9))
             if data.media_cache else None)
    encoder = MMEncoder(processor, plugin, template, options, data.cutoff_len,
                        train_on_prompt=data.train_on_prompt, mask_history=data.mask_history,
                        model_config=model_config, media_cache=cache, enable_thinking=data.enable_thinking,
                        positions=packing)
    return MultimodalCollator(encoder, packing=packing)
