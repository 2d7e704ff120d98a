"""LLaMA-Factory v1's rows (content as `{"type", "value"}` blocks: text, reasoning, tool_call, media; a
`loss_weight` per message; `tools` as a JSON string; `chosen_messages` / `rejected_messages` pairs) read as the
OpenAI rows they stand for, with LLaMA-Factory's own `reason_tool_use_demo_50.jsonl`."""

import json

import pytest

from lmforge.data.formats import converter
from lmforge.data.labels import IGNORE_INDEX
from lmforge.data.loading import load_conversations
from lmforge.data.preference_rows import convert_preference
from lmforge.data.processors.sft import tokenize_sft
from lmforge.data.registry import resolve_dataset, resolve_datasets
from lmforge.data.templates import get_template
from lmforge.data.templates.auto import resolve_template
from lmforge.data.templates.messages import ToolCall
from lmforge.errors import DataError
from tests.data.test_direct_file_shapes import direct, pair
from tests.data.test_openai_rows import load_file
from tests.data.test_templates_auto import auto_tokenizer
from tests.refdata import refdata

CALL = json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})
ROW = {"messages": [
    {"role": "system", "content": [{"type": "text", "value": "You are a weather bot."}], "loss_weight": 0.0},
    {"role": "user", "content": [{"type": "text", "value": "Weather in Paris?"}], "loss_weight": 0.0},
    {"role": "assistant", "content": [{"type": "reasoning", "value": "I should call the tool."},
                                      {"type": "tool_call", "value": CALL}], "loss_weight": 1.0},
    {"role": "tool", "content": [{"type": "text", "value": "{\"temp\": 21}"}], "loss_weight": 0.0},
    {"role": "assistant", "content": [{"type": "text", "value": "21 C."}], "loss_weight": 1.0}],
    "tools": json.dumps([{"type": "function", "function": {"name": "get_weather", "parameters": {}}}])}


def test_blocks_become_text_thought_calls_and_tools(tmp_path):
    conversation = converter(direct(tmp_path, [ROW]))(ROW, "rows.jsonl:line 1")
    assert conversation.system == "You are a weather bot."
    user, calls, result, answer = conversation.messages
    assert user.content == "Weather in Paris?"
    assert calls.tool_calls == (ToolCall("get_weather", {"city": "Paris"}),) and calls.trained
    assert calls.content == "<think>\nI should call the tool.\n</think>\n\n"
    assert (result.role, result.content, answer.content) == ("tool", "{\"temp\": 21}", "21 C.")
    assert conversation.tools[0]["function"]["name"] == "get_weather"


def test_a_registered_openai_dataset_reads_v1_rows(tmp_path):
    (tmp_path / "v1.json").write_text(json.dumps([ROW]))
    (tmp_path / "dataset_info.json").write_text(json.dumps({"v1": {
        "file_name": "v1.json", "formatting": "openai", "columns": {"messages": "messages", "tools": "tools"}}}))
    conversation = load_conversations(resolve_dataset("v1", tmp_path), max_samples=None,
                                      on_bad_row="error").conversations[0]
    assert conversation.messages[1].tool_calls == (ToolCall("get_weather", {"city": "Paris"}),)


def test_the_models_template_trains_the_thought_and_the_call(tmp_path):
    tokenizer = auto_tokenizer("qwen3")
    conversation = load_file(tmp_path, [ROW]).conversations[0]
    columns, _ = tokenize_sft([conversation], resolve_template(None, tokenizer), tokenizer, cutoff_len=2048)
    ids, labels = columns["input_ids"][-1], columns["labels"][-1]
    trained = tokenizer.decode([t for t, label in zip(ids, labels, strict=True) if label != IGNORE_INDEX])
    assert "get_weather" in trained and '"Paris"' in trained and "21 C." in trained


def test_a_weight_0_answer_and_media_blocks(tmp_path):
    image = refdata("llamafactory_data") / "mllm_demo_data" / "1.jpg"
    row = {"messages": [
        {"role": "user", "content": [{"type": "image_url", "value": str(image)}, {"type": "text", "value": "What?"}]},
        {"role": "assistant", "content": [{"type": "text", "value": "A photo."}], "loss_weight": 0},
        {"role": "user", "content": [{"type": "text", "value": "Sure?"}]},
        {"role": "assistant", "content": [{"type": "text", "value": "Yes."}]}]}
    conversation = load_file(tmp_path, [row]).conversations[0]
    assert conversation.messages[0].content == "<image>What?" and conversation.media == {"images": [str(image)]}
    assert [m.trained for m in conversation.messages] == [True, False, True, True]


def _with(index, **changes):
    row = json.loads(json.dumps(ROW))
    row["messages"][index].update(changes)
    return row


@pytest.mark.parametrize(("row", "pattern"), [
    (_with(4, loss_weight=0.5), r"message 5 `loss_weight` must be 0 \(not trained\) or 1 \(trained\), got 0.5"),
    (_with(1, loss_weight=1.0), r"message 2 is a `user` message with `loss_weight` 1.0: lmforge trains answers "
                                r"\(`train_on_prompt: true`"),
    (_with(2, content=[{"type": "tool_call", "value": "{\"name\": \"f\""}]), r"message 3 block 1 is not valid JSON"),
    (_with(2, content=[{"type": "tool_call", "value": "{\"name\": \"f\"}"}]), r"message 3 block 1 must be a JSON "
                                                                             r"object \{\"name\""),
    (_with(1, content=[{"type": "reasoning", "value": "hmm"}]), r"message 2 is a `user` message with reasoning"),
    (_with(1, content=[{"type": "html", "value": "<b>"}]), r"message 2 block 1 must be \{\"type\": one of text"),
])
def test_malformed_blocks_name_the_row_message_and_block(tmp_path, row, pattern):
    with pytest.raises(DataError, match=rf"chat.jsonl:line 1: {pattern}"):
        load_file(tmp_path, [row])


def test_chosen_and_rejected_conversations_are_a_preference_pair(tmp_path):
    question = [{"role": "user", "content": [{"type": "text", "value": "Capital of France?"}], "loss_weight": 0.0}]
    row = {"chosen_messages": [*question, {"role": "assistant", "content": [{"type": "text", "value": "Paris."}]}],
           "rejected_messages": [*question, {"role": "assistant", "content": [{"type": "text", "value": "Lyon."}]}]}
    preference = pair(tmp_path, row)
    assert (preference.prompt[-1].content, preference.chosen, preference.rejected) == (
        "Capital of France?", "Paris.", "Lyon.")
    with pytest.raises(DataError, match=r"line 1: is a preference pair .*`stage: dpo`"):
        converter(direct(tmp_path, [row]))(row, "rows.jsonl:line 1")


def test_llamafactorys_v1_demo_file_reads_every_clean_row(tmp_path):
    loaded = load_file(tmp_path, [json.loads(line) for line in (
        refdata("llamafactory_data") / "reason_tool_use_demo_50.jsonl").read_text().splitlines()], on_bad_row="skip")
    assert len(loaded.conversations) == 48  # two upstream answers hold a stray `</think>` besides their reasoning
    assert [reason.split(": ", 1)[0] for reason in loaded.skipped] == [
        f"{tmp_path / 'chat.jsonl'}:line 6", f"{tmp_path / 'chat.jsonl'}:line 7"]
    assert all("has both `reasoning_content` and a think block" in reason for reason in loaded.skipped)
    first = loaded.conversations[0]
    assert first.tools and first.system.startswith("You are a methodical and expert assistant.")
    assert sum(len(m.tool_calls) for c in loaded.conversations for m in c.messages) == 66
    assert all(m.content.startswith("<think>\n") for c in loaded.conversations for m in c.messages
               if m.role == "assistant" and "<think>" in m.content)
    columns, stats = tokenize_sft(loaded.conversations[:4], get_template("qwen3"), auto_tokenizer("qwen3"),
                                  cutoff_len=8192)
    assert len(columns["input_ids"]) >= 4 and stats.answers > 0


def test_llamafactorys_v1_demo_files(llamafactory_folder):
    root = refdata("llamafactory_data")
    sft = load_conversations(resolve_dataset(str(root / "v1_sft_demo.jsonl"), root), max_samples=None,
                             on_bad_row="error").conversations
    assert len(sft) == 500 and all(c.messages[-1].role == "assistant" for c in sft)
    pairs = [json.loads(line) for line in (root / "v1_dpo_demo.jsonl").read_text().splitlines()]
    assert all(pair(llamafactory_folder, row).chosen != pair(llamafactory_folder, row).rejected for row in pairs)
    # its media paths (`data/mllm_demo_data/1.jpg`) are relative to LLaMA-Factory's folder, where it runs
    spec = resolve_dataset("data/v1_multimodal_demo.jsonl", llamafactory_folder)
    rows = load_conversations(spec, max_samples=None, on_bad_row="error").conversations
    assert rows and rows[0].media["images"] == ["data/mllm_demo_data/1.jpg", "data/mllm_demo_data/1.jpg"]
    assert rows[0].messages[0].content == "<image>Who are they?"


def test_llamafactorys_v1_dataset_files_list_their_datasets(llamafactory_folder):
    identity, alpaca = resolve_datasets(["data/v1_sft_demo.yaml"], "unused")
    assert (identity.name, identity.formatting, identity.path) == ("identity", "alpaca",
                                                                   llamafactory_folder / "data/identity.json")
    assert (alpaca.name, alpaca.num_samples) == ("alpaca_en_demo", 500)
    assert len(load_conversations(alpaca, max_samples=None, on_bad_row="error").conversations) == 500
    (multimodal,) = resolve_datasets(["v1_multimodal_demo.yaml"], "data")  # found inside dataset_dir too
    rows = load_conversations(multimodal, max_samples=None, on_bad_row="error").conversations
    assert len(rows) == 24 and rows[0].media["images"]
    with pytest.raises(DataError, match=r"v1_dpo_demo.yaml: dataset `dpo_zh_demo` comes from the hub "
                                        r"\(HuggingFaceH4/orca_dpo_pairs\) .* set `path` \(with `source: local`\)"):
        resolve_datasets(["data/v1_dpo_demo.yaml"], "data")


def test_converters_weights_and_mistakes_in_a_v1_dataset_file(llamafactory_folder):
    pairs = llamafactory_folder / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({
        "chosen": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "good"}],
        "rejected": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "bad"}]})
        for i in range(4)))
    listing = llamafactory_folder / "mix.yaml"
    listing.write_text(
        "tools:\n  path: data/glaive_toolcall_en_demo.json\n  source: local\n  converter: sharegpt\n  weight: 0.5\n"
        "pairs:\n  path: pairs.jsonl\n  source: local\n  converter: pair\n")
    tools, pair_spec = resolve_datasets([str(listing)], "data")
    loaded = load_conversations(tools, max_samples=None, on_bad_row="skip")
    assert len(loaded.conversations) == int((300 - len(loaded.skipped)) * 0.5)  # half its rows, drawn
    assert any(m.tool_calls for c in loaded.conversations for m in c.messages)
    preference = convert_preference(json.loads(pairs.read_text().splitlines()[0]), pair_spec, "pairs.jsonl:line 1")
    assert (preference.chosen, preference.rejected) == ("good", "bad")
    for text, pattern in [("a:\n  path: x.json\n  source: local\n  colums: {}\n", r"unknown key\(s\) `colums`"),
                          ("a:\n  path: x.json\n  source: local\n  converter: csv\n", r"`converter: csv`: one of"),
                          ("a:\n  path: x.json\n  source: local\n  streaming: true\n", r"set `streaming: true` in "
                                                                                      r"the run's config"),
                          ("a:\n  path: x.json\n  source: local\n", r"dataset `a`: file not found: .*x.json"),
                          ("- x.json\n", r"must map dataset names")]:
        listing.write_text(text)
        with pytest.raises(DataError, match=rf"mix.yaml.*{pattern}"):
            resolve_datasets([str(listing)], "data")
