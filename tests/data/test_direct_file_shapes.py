"""A data file given directly is read in the shape its rows have, for every stage: LLaMA-Factory's, trl's
(prompt-completion, prompt-only, preference pairs with or without an explicit prompt, unpaired KTO) and OpenAI's
(chat and preference fine-tuning)."""

import json

import pytest

from lmforge.config import build_config
from lmforge.data.formats import converter
from lmforge.data.preference_rows import convert_preference
from lmforge.data.prompts import prompt_converter
from lmforge.data.registry import resolve_dataset
from lmforge.data.templates import get_template
from lmforge.errors import DataError
from tests.refdata import refdata
from tests.stage_data import build_stage_datasets

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))


def direct(tmp_path, rows):
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows))
    return resolve_dataset(str(path), tmp_path)


def pair(tmp_path, row):
    return convert_preference(row, direct(tmp_path, [row]), "rows.jsonl:line 1")


def test_trl_prompt_completion_trains_only_the_completion(tmp_path):
    plain = {"prompt": "2+2?", "completion": "4."}
    chat = {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                       {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "2+2?"}],
            "completion": [{"role": "assistant", "content": "4."}]}
    spec = direct(tmp_path, [plain])
    conversation = converter(spec)(plain, "line 1")
    assert [(m.role, m.content, m.trained) for m in conversation.messages] == [
        ("user", "2+2?", True), ("assistant", "4.", True)]
    conversation = converter(spec)(chat, "line 2")
    assert conversation.system == "Be brief."
    assert [(m.role, m.trained) for m in conversation.messages] == [
        ("user", True), ("assistant", False), ("user", True), ("assistant", True)]


def test_preference_pairs_in_every_shape(tmp_path):
    expected = ("Capital of France?", "Paris.", "Lyon.")
    question = [{"role": "user", "content": "Capital of France?"}]
    shapes = [
        {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."},  # trl, standard
        {"prompt": question, "chosen": [{"role": "assistant", "content": "Paris."}],  # trl, conversational
         "rejected": [{"role": "assistant", "content": "Lyon."}]},
        {"chosen": [*question, {"role": "assistant", "content": "Paris."}],  # trl, implicit prompt
         "rejected": [*question, {"role": "assistant", "content": "Lyon."}]},
        {"input": {"messages": question, "tools": [WEATHER]},  # OpenAI's preference fine-tuning
         "preferred_output": [{"role": "assistant", "content": "Paris."}],
         "non_preferred_output": [{"role": "assistant", "content": "Lyon."}]},
        {"instruction": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."},  # LLaMA-Factory alpaca
        {"conversations": [{"from": "human", "value": "Capital of France?"}],  # LLaMA-Factory sharegpt
         "chosen": {"from": "gpt", "value": "Paris."}, "rejected": {"from": "gpt", "value": "Lyon."}},
    ]
    for row in shapes:
        preference = pair(tmp_path, row)
        assert (preference.prompt[-1].content, preference.chosen, preference.rejected) == expected, row
    assert pair(tmp_path, shapes[3]).tools == [WEATHER]


@pytest.mark.parametrize(("row", "pattern"), [
    ({"chosen": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "x"}],
      "rejected": [{"role": "user", "content": "b"}, {"role": "assistant", "content": "y"}]},
     r"must be the same conversation up to their last message"),
    ({"prompt": "q", "chosen": [{"role": "assistant", "content": "x"}, {"role": "assistant", "content": "y"}],
      "rejected": "z"}, r"`chosen` must be one assistant message, got a list of 2"),
    ({"prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "chosen": "x",
      "rejected": "y"}, r"the prompt of a ranking row must end with a user message"),
    ({"input": "q", "preferred_output": "x", "non_preferred_output": "y"}, r'`input` must be \{"messages"'),
])
def test_malformed_pairs_name_the_row(tmp_path, row, pattern):
    with pytest.raises(DataError, match=rf"rows.jsonl:line 1: .*{pattern}"):
        pair(tmp_path, row)


def test_stages_read_a_direct_file_as_they_read_their_rows(tmp_path, tiny_tokenizer):
    def build(stage, rows):
        path = direct(tmp_path, rows).path
        cfg = build_config({"cutoff_len": 128, "stage": stage, "dataset": str(path), "dataset_dir": str(tmp_path),
                            **({"per_device_train_batch_size": 2} if stage == "kto" else {})})
        return build_stage_datasets(cfg, tiny_tokenizer, get_template("chatml")).train

    pairs = [{"prompt": f"q{i}", "chosen": "good", "rejected": "bad"} for i in range(4)]
    assert set(build("dpo", pairs).column_names) == {"prompt_ids", "chosen_ids", "rejected_ids"}
    unpaired = [{"prompt": f"q{i}", "completion": "a", "label": i % 2 == 0} for i in range(4)]
    assert build("kto", unpaired)["label"] == [True, False, True, False]
    with pytest.raises(DataError, match=r"line 1: is a preference pair .*`stage: dpo`"):
        build("sft", pairs)
    demo = refdata("llamafactory_data") / "dpo_en_demo.json"  # LLaMA-Factory's demo pairs, given by path
    cfg = build_config({"cutoff_len": 128, "stage": "dpo", "dataset": str(demo), "max_samples": 4})
    assert len(build_stage_datasets(cfg, tiny_tokenizer, get_template("chatml")).train) == 4


def test_trl_prompt_only_rows_for_online_rl(tmp_path):
    row = {"prompt": [{"role": "user", "content": "Solve 2+2."}], "solution": "4"}
    prompt = prompt_converter(direct(tmp_path, [row]))(row, "rows.jsonl:line 1")
    assert [m.content for m in prompt.messages] == ["Solve 2+2."] and prompt.columns == {"solution": "4"}
    with_answer = prompt_converter(direct(tmp_path, [row]))({"prompt": "2+2?", "completion": "4"}, "line 2")
    assert with_answer.messages[0].content == "2+2?" and with_answer.columns == {"answer": "4"}
