import pytest

from lmforge.data.collator import SftCollator
from lmforge.data.conversation import Conversation
from lmforge.data.labels import IGNORE_INDEX
from lmforge.data.processors.sft import build_sft_example, tokenize_sft
from lmforge.data.templates import Message, get_template

TURNS = [Message("user", "first question"), Message("assistant", "first answer"),
         Message("user", "second question"), Message("assistant", "second answer")]


def supervised_text(tokenizer, input_ids, labels):
    return tokenizer.decode([t for t, label in zip(input_ids, labels, strict=True) if label != IGNORE_INDEX])


def test_mask_history_and_train_on_prompt(tiny_tokenizer):
    template = get_template("chatml")
    conversation = Conversation(TURNS, None, "t")
    ids, labels, _ = build_sft_example(conversation, template, tiny_tokenizer, cutoff_len=512, mask_history=True)
    assert supervised_text(tiny_tokenizer, ids, labels) == "second answer<|im_end|>"
    ids, labels, _ = build_sft_example(conversation, template, tiny_tokenizer, cutoff_len=512, train_on_prompt=True)
    assert sum(label == IGNORE_INDEX for label in labels) == 1  # only the newline after the last answer


def test_truncation_keeps_whole_turns_then_splits_the_budget(tiny_tokenizer):
    template = get_template("chatml")
    conversation = Conversation(TURNS, None, "t")
    full, _, truncated = build_sft_example(conversation, template, tiny_tokenizer, cutoff_len=512)
    assert not truncated
    ids, labels, truncated = build_sft_example(conversation, template, tiny_tokenizer, cutoff_len=len(full) - 3)
    assert truncated and len(ids) <= len(full) - 3
    assert "first answer<|im_end|>" in supervised_text(tiny_tokenizer, ids, labels)
    ids, labels, truncated = build_sft_example(conversation, template, tiny_tokenizer, cutoff_len=8)
    assert truncated and len(ids) == 8 and any(label != IGNORE_INDEX for label in labels)


def test_examples_left_without_supervision_are_counted(tiny_tokenizer):
    long_question = [Message("user", "a long question " * 20), Message("assistant", "x")]
    conversations = [Conversation(long_question, None, "f:row 1"),
                     Conversation([Message("user", "q"), Message("assistant", "a")], None, "f:row 2")]
    columns, stats = tokenize_sft(conversations, get_template("chatml"), tiny_tokenizer, cutoff_len=1,
                                  train_on_prompt=False)
    assert stats.rows == 0 and stats.dropped_empty == ["f:row 1", "f:row 2"] and columns["input_ids"] == []


@pytest.mark.parametrize("multiple", [None, 8])
def test_collator_pads_inputs_and_masks_labels(multiple):
    batch = SftCollator(pad_token_id=0, pad_to_multiple_of=multiple)(
        [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [9], "labels": [9]}])
    width = 8 if multiple else 3
    assert batch["input_ids"].shape == (2, width)
    assert batch["input_ids"][1].tolist() == [9] + [0] * (width - 1)
    assert batch["labels"][1].tolist() == [9] + [-100] * (width - 1)
    assert batch["attention_mask"].sum().item() == 4
