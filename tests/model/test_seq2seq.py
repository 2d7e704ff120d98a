"""Seq2seq is first-class: encoder inputs and decoder targets, and LoRA SFT through `lmforge train`."""

import json

import pytest
import torch

from lmforge.data.collator import Seq2SeqCollator
from lmforge.data.conversation import Conversation
from lmforge.data.labels import IGNORE_INDEX
from lmforge.data.processors.seq2seq import build_seq2seq_example
from lmforge.data.templates import Message, get_template
from tests.conftest import ROOT, run_cli


def conversation(*messages):
    return Conversation(messages=[Message(role, text) for role, text in messages], system=None,
                        source="test row 1")


def test_prompt_goes_to_the_encoder_and_answer_plus_eos_to_the_decoder(tiny_tokenizer):
    template = get_template("seq2seq")
    ids, labels, truncated = build_seq2seq_example(
        conversation(("user", "Name a colour."), ("assistant", "Blue."), ("user", "Another?"), ("assistant", "Red.")),
        template, tiny_tokenizer, cutoff_len=64)
    assert tiny_tokenizer.decode(ids) == "Name a colour.\nBlue.\nAnother?\n"
    assert tiny_tokenizer.decode(labels) == "Red.<|im_end|>" and labels[-1] == tiny_tokenizer.eos_token_id
    assert not truncated
    ids, labels, truncated = build_seq2seq_example(
        conversation(("user", "one two three four five six seven"), ("assistant", "eight nine ten eleven")),
        template, tiny_tokenizer, cutoff_len=3)
    assert truncated and len(ids) == 3 and len(labels) == 3
    assert tiny_tokenizer.decode(ids).endswith("seven\n")  # the input keeps its end, the target its start


def test_collator_pads_inputs_and_labels_separately():
    batch = Seq2SeqCollator(pad_token_id=0, pad_to_multiple_of=None)(
        [{"input_ids": [5, 6, 7], "labels": [8]}, {"input_ids": [9], "labels": [10, 11]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [9, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[8, IGNORE_INDEX], [10, 11]]


@pytest.mark.slow
def test_tiny_t5_trains_with_lora_sft_through_the_cli(tmp_path):
    """The documented example, as a user runs it: the task type is inferred, not configured."""
    out = tmp_path / "t5"
    result = run_cli("train", str(ROOT / "examples" / "seq2seq" / "train.yaml"), f"output_dir={out}", "max_steps=6",
                     "logging_steps=1")
    assert result.returncode == 0, result.stderr
    assert ("T5ForConditionalGeneration via AutoModelForSeq2SeqLM (the config of model_type `t5` says "
            "is_encoder_decoder)") in result.stdout
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["task_type"] == "SEQ_2_SEQ_LM"  # inferred: the config never set it
    assert sorted(adapter_config["target_modules"]) == ["k", "o", "q", "v", "wi_0", "wi_1", "wo"]
    losses = [json.loads(line)["loss"] for line in (out / "trainer_log.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]
    assert len(losses) == 6 and losses[-1] < losses[0]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["supervised_tokens_per_s"] > 0

    from peft import PeftModel
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from lmforge.hub.builtin import builtin_path

    base = AutoModelForSeq2SeqLM.from_pretrained(builtin_path("builtin:tiny-t5"))
    model = PeftModel.from_pretrained(base, out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    inputs = tokenizer("Who are you?\n", return_tensors="pt")
    with torch.inference_mode():
        generated = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    assert generated.shape[1] > 1
