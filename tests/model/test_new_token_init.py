"""`init_special_tokens`: where new tokens' embedding rows start (noise_init, desc_init, desc_init_w_noise)."""

import math
import shutil

import pytest
import torch
from transformers import AutoModelForCausalLM

from lmforge.errors import ModelError
from lmforge.model.loading import load_tokenizer
from tests.model.conftest import config_for, load_configured

DESCRIBED = {"<|plan|>": "a plan written before the answer", "<|plan_end|>": "the end of the plan"}


def loaded(path, **keys):
    cfg = config_for(path, **keys)
    tokenizer = load_tokenizer(cfg.model)
    model = load_configured(cfg, dtype=torch.float32, tokenizer=tokenizer, seed=keys.get("seed"))
    return tokenizer, model


def description_mean(weight, tokenizer, text):
    return weight[tokenizer(text, add_special_tokens=False)["input_ids"]].mean(0)


@pytest.mark.parametrize("family", ["llama", "qwen2"])  # the head apart from the embeddings, and tied to them
def test_desc_init_starts_each_token_at_the_mean_of_its_descriptions_rows(tiny_family, family):
    tokenizer, model = loaded(tiny_family(family), add_special_tokens=DESCRIBED, init_special_tokens="desc_init")
    embeddings, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert (head is embeddings) == (family == "qwen2")
    for token, text in DESCRIBED.items():
        row = tokenizer.convert_tokens_to_ids(token)
        for weight in (embeddings, head):  # each matrix from its own rows
            torch.testing.assert_close(weight[row], description_mean(weight, tokenizer, text))


def test_desc_init_w_noise_adds_seeded_noise_of_std_one_over_root_hidden(tiny_family):
    rows = {}
    for seed in (1, 1, 2):
        tokenizer, model = loaded(tiny_family("llama"), add_special_tokens=DESCRIBED,
                                  init_special_tokens="desc_init_w_noise", seed=seed)
        weight = model.get_input_embeddings().weight
        row = tokenizer.convert_tokens_to_ids("<|plan|>")
        rows.setdefault(seed, []).append(weight[row] - description_mean(weight, tokenizer, DESCRIBED["<|plan|>"]))
    assert torch.equal(*rows[1]) and not torch.equal(rows[1][0], rows[2][0])
    noise = torch.cat([rows[1][0], rows[2][0]])
    assert noise.std().item() == pytest.approx(1 / math.sqrt(rows[1][0].numel()), rel=0.25)


def test_a_token_the_checkpoint_already_has_keeps_its_trained_row(tiny_family):
    path = tiny_family("llama")
    _, plain = loaded(path)
    eos = load_tokenizer(config_for(path).model).eos_token
    tokenizer, model = loaded(path, add_special_tokens={eos: "the end of a text", **DESCRIBED},
                              init_special_tokens="desc_init")
    eos_id = tokenizer.convert_tokens_to_ids(eos)
    assert torch.equal(model.get_input_embeddings().weight[eos_id], plain.get_input_embeddings().weight[eos_id])


def test_new_tokens_in_rows_the_checkpoint_padded_start_at_the_mean(tiny_family, tmp_path):
    # Qwen-style: more embedding rows than tokens, so new tokens need no resize and land on untrained rows
    padded = tmp_path / "padded"
    shutil.copytree(tiny_family("llama"), padded)
    model = AutoModelForCausalLM.from_pretrained(padded, dtype=torch.float32)
    vocab = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(vocab + 64, mean_resizing=False)
    with torch.no_grad():
        model.get_input_embeddings().weight[vocab:] = 7.0  # what an untrained row may hold
    model.save_pretrained(padded)
    tokenizer, loaded_model = loaded(padded, add_special_tokens="<|tool|>,<|tool_end|>")
    weight = loaded_model.get_input_embeddings().weight
    assert weight.shape[0] == vocab + 64 and len(tokenizer) == vocab + 2
    for row in (vocab, vocab + 1):
        torch.testing.assert_close(weight[row], weight[:vocab].mean(0))
    assert (weight[vocab + 2:] == 7.0).all()  # rows no token uses are left alone


def test_a_description_made_only_of_new_tokens_is_refused(tiny_family):
    with pytest.raises(ModelError, match=r"description of `<\|plan_end\|>` .* only of new tokens"):
        loaded(tiny_family("llama"), add_special_tokens={"<|plan|>": "a plan", "<|plan_end|>": "<|plan|>"},
               init_special_tokens="desc_init")


def test_a_reward_model_gets_the_new_tokens_rows_too(tiny_family):
    from lmforge.model.loading import load_reward_model

    cfg = config_for(tiny_family("llama"), add_special_tokens=DESCRIBED, init_special_tokens="desc_init")
    tokenizer = load_tokenizer(cfg.model)
    weight = load_reward_model(cfg.model, tokenizer, dtype=torch.float32).get_input_embeddings().weight
    assert weight.shape[0] == len(tokenizer)  # before, the new ids indexed past the embeddings
    row = tokenizer.convert_tokens_to_ids("<|plan|>")
    torch.testing.assert_close(weight[row], description_mean(weight, tokenizer, DESCRIBED["<|plan|>"]))
