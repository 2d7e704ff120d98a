"""Our group beam search against transformers' own beam search, and the diversity it adds."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessorList, RepetitionPenaltyLogitsProcessor

from lmforge.infer.diverse_beam import diverse_beam_search


@pytest.fixture(scope="module")
def tiny(tiny_llama_path):
    return AutoModelForCausalLM.from_pretrained(tiny_llama_path).eval(), AutoTokenizer.from_pretrained(tiny_llama_path)


def _prompt(tokenizer, text="Hello, how are you?"):
    return tokenizer.encode(f"<|im_start|>user\n{text}<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)


def _hf_beams(model, tokenizer, prompt, num_beams, eos, **kwargs):
    out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                         num_beams=num_beams, num_return_sequences=num_beams, do_sample=False, eos_token_id=eos,
                         pad_token_id=tokenizer.pad_token_id, output_scores=True, return_dict_in_generate=True,
                         temperature=None, top_p=None, top_k=None, **kwargs)
    return out.sequences[:, len(prompt):], out.sequences_scores


@pytest.mark.parametrize(("num_beams", "max_new_tokens", "length_penalty", "eos_words", "repetition_penalty",
                          "some_end_early"), [
    (4, 12, 1.0, ["<|im_end|>"], 1.0, False),
    (3, 20, 0.5, ["<|im_end|>", "<|endoftext|>"], 1.0, True),  # the random model ends beams with <|endoftext|>
    (2, 16, 2.0, ["<|endoftext|>"], 1.3, False),
])
def test_one_group_returns_transformers_beams(tiny, num_beams, max_new_tokens, length_penalty, eos_words,
                                              repetition_penalty, some_end_early):
    model, tokenizer = tiny
    prompt = _prompt(tokenizer)
    eos = tokenizer.convert_tokens_to_ids(eos_words)
    sequences, scores = _hf_beams(model, tokenizer, prompt, num_beams, eos, max_new_tokens=max_new_tokens,
                                  length_penalty=length_penalty, repetition_penalty=repetition_penalty)
    processors = LogitsProcessorList([RepetitionPenaltyLogitsProcessor(repetition_penalty)])
    [beams] = diverse_beam_search(model, prompt, num_beams=num_beams, num_beam_groups=1, diversity_penalty=0.0,
                                  max_new_tokens=max_new_tokens, eos_token_ids=eos,
                                  pad_token_id=tokenizer.pad_token_id, length_penalty=length_penalty,
                                  logits_processor=processors)
    assert len(beams) == num_beams
    for i, beam in enumerate(beams):
        assert sequences[i, :len(beam.token_ids)].tolist() == beam.token_ids
        fill = tokenizer.pad_token_id or eos[0]  # transformers pads finished beams with this
        assert (sequences[i, len(beam.token_ids):] == fill).all()  # so the beam lengths match too
        assert beam.score == pytest.approx(float(scores[i]), abs=1e-5)
    assert any(beam.token_ids[-1] in eos for beam in beams) == some_end_early  # finished-beam bookkeeping ran


def test_groups_without_penalty_are_each_transformers_beam_search(tiny):
    model, tokenizer = tiny
    prompt = _prompt(tokenizer, "Tell me a story.")
    eos = [tokenizer.convert_tokens_to_ids("<|im_end|>")]
    sequences, _ = _hf_beams(model, tokenizer, prompt, 2, eos, max_new_tokens=10)
    groups = diverse_beam_search(model, prompt, num_beams=6, num_beam_groups=3, diversity_penalty=0.0,
                                 max_new_tokens=10, eos_token_ids=eos, pad_token_id=tokenizer.pad_token_id)
    for group in groups:
        assert [beam.token_ids for beam in group] == sequences[:, :10].tolist()


def test_diversity_penalty_makes_groups_start_differently(tiny):
    model, tokenizer = tiny
    prompt = _prompt(tokenizer)
    eos = [tokenizer.convert_tokens_to_ids("<|im_end|>")]
    groups = diverse_beam_search(model, prompt, num_beams=4, num_beam_groups=4, diversity_penalty=100.0,
                                 max_new_tokens=6, eos_token_ids=eos, pad_token_id=tokenizer.pad_token_id)
    first_tokens = [group[0].token_ids[0] for group in groups]
    assert len(set(first_tokens)) == 4  # a huge penalty forbids a token an earlier group took at that step
    plain = diverse_beam_search(model, prompt, num_beams=4, num_beam_groups=4, diversity_penalty=0.0,
                                max_new_tokens=6, eos_token_ids=eos, pad_token_id=tokenizer.pad_token_id)
    assert len({group[0].token_ids[0] for group in plain}) == 1


def test_groups_must_divide_the_beams(tiny):
    model, _ = tiny
    with pytest.raises(ValueError, match="multiple of num_beam_groups"):
        diverse_beam_search(model, [1, 2], num_beams=4, num_beam_groups=3, diversity_penalty=1.0,
                            max_new_tokens=2, eos_token_ids=[0], pad_token_id=0)
