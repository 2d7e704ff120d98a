import json

import pytest

from lmforge.config import build_config
from lmforge.data.loading import load_conversations
from lmforge.data.registry import resolve_dataset
from lmforge.data.templates import get_template
from lmforge.errors import DataError
from tests.refdata import refdata
from tests.stage_data import build_stage_datasets


def write_dataset(folder, rows, name="demo", entry=None, suffix=".json"):
    path = folder / f"{name}{suffix}"
    if suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows))
    else:
        path.write_text(json.dumps(rows))
    info = {name: {"file_name": path.name, **(entry or {})}}
    (folder / "dataset_info.json").write_text(json.dumps(info))
    return resolve_dataset(name, folder)


def load(spec, on_bad_row="error"):
    return load_conversations(spec, max_samples=None, on_bad_row=on_bad_row)


def test_alpaca_with_input_history_and_system(tmp_path):
    spec = write_dataset(tmp_path, [{"instruction": "Add", "input": "2 and 3", "output": "5",
                                     "system": "math", "history": [["hi", "hello"]]}],
                         entry={"columns": {"prompt": "instruction", "query": "input", "response": "output",
                                            "system": "system", "history": "history"}})
    conversation = load(spec).conversations[0]
    assert [(m.role, m.content) for m in conversation.messages] == [
        ("user", "hi"), ("assistant", "hello"), ("user", "Add\n2 and 3"), ("assistant", "5")]
    assert conversation.system == "math"


def test_sharegpt_and_openai_messages(tmp_path):
    sharegpt = write_dataset(tmp_path, [{"conversations": [
        {"from": "system", "value": "sys"}, {"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}],
        entry={"formatting": "sharegpt"})
    conversation = load(sharegpt).conversations[0]
    assert conversation.system == "sys" and [m.role for m in conversation.messages] == ["user", "assistant"]
    openai = write_dataset(tmp_path, [{"messages": [{"role": "user", "content": "q"},
                                                    {"role": "assistant", "content": "a"}]}],
                           entry={"formatting": "openai", "columns": {"messages": "messages"}}, suffix=".jsonl")
    assert [m.content for m in load(openai).conversations[0].messages] == ["q", "a"]


def test_a_data_file_given_directly_detects_its_format(tmp_path):
    path = tmp_path / "chat.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "q"},
                                             {"role": "assistant", "content": "a"}]}))
    assert load(resolve_dataset(str(path), tmp_path)).conversations[0].messages[1].content == "a"


@pytest.mark.parametrize(("rows", "entry", "pattern"), [
    ([{"instruction": "q"}], None, r"demo.json:row 1: missing column `output`"),
    ([{"instruction": "q", "output": 3}], None, r"row 1: `output` must be a string, got int"),
    ([{"instruction": "q", "output": "a"}, {"instruction": " ", "output": "a"}], None,
     r"row 2: `instruction` is empty"),
    ([{"conversations": [{"from": "gpt", "value": "a"}, {"from": "human", "value": "q"}]}],
     {"formatting": "sharegpt"}, r"row 1: wrong role order: turn 1 is `assistant`, expected `user`"),
    ([{"conversations": [{"from": "robot", "value": "a"}]}],
     {"formatting": "sharegpt"}, r"row 1: message 1 has unknown role 'robot' under `from`"),
    ([{"conversations": [{"from": "human", "value": "q"}]}],
     {"formatting": "sharegpt"}, r"must end with an assistant message"),
    (["just text"], None, r"row 1: a row must be an object, got str"),
])
def test_bad_rows_name_file_row_and_reason(tmp_path, rows, entry, pattern):
    spec = write_dataset(tmp_path, rows, entry=entry)
    with pytest.raises(DataError, match=pattern):
        load(spec)


def test_skipping_bad_rows_is_reported_never_silent(tmp_path):
    spec = write_dataset(tmp_path, [{"instruction": "q", "output": "a"}, {"instruction": "q"},
                                    {"instruction": "q2", "output": "a2"}])
    loaded = load(spec, on_bad_row="skip")
    assert len(loaded.conversations) == 2
    assert loaded.skipped == [f"{spec.path}:row 2: missing column `output` (columns present: instruction)"]


def test_a_data_file_named_relative_to_dataset_dir_is_found_there(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    folder.mkdir()
    spec = write_dataset(folder, [{"instruction": "q", "output": "a"}])
    monkeypatch.chdir(tmp_path)  # where `lmforge` runs: the file is not here, but in dataset_dir
    found = resolve_dataset(spec.path.name, folder)
    assert found.path == folder / spec.path.name and len(load(found).conversations) == 1
    with pytest.raises(DataError, match=r"file not found: elsewhere.json \(looked for from the working directory "
                                        r".* and in dataset_dir .*data\)"):
        resolve_dataset("elsewhere.json", folder)


def test_registry_errors(tmp_path):
    (tmp_path / "dataset_info.json").write_text(json.dumps({"gone": {"file_name": "gone.json"},
                                                            "odd": {"file_name": "x.json", "colums": {}},
                                                            "hub": {"hf_hub_url": "org/data"}}))
    with pytest.raises(DataError, match=r"dataset `gone`: file not found: .*gone.json \(its `file_name` in .*"
                                        r"dataset_info.json\)"):
        resolve_dataset("gone", tmp_path)
    with pytest.raises(DataError, match=r"entry `odd`: `colums`: Extra inputs are not permitted"):
        resolve_dataset("odd", tmp_path)
    with pytest.raises(DataError, match=r"comes from the hub \(org/data\) and no hub is reachable"):
        resolve_dataset("hub", tmp_path)
    with pytest.raises(DataError, match=r"dataset `nope` is neither registered .* registered: gone, hub, odd"):
        resolve_dataset("nope", tmp_path)
    (tmp_path / "broken.json").write_text("[{\"a\": 1},")
    with pytest.raises(DataError, match=r"broken.json is not valid JSON: line 1"):
        load(resolve_dataset(str(tmp_path / "broken.json"), tmp_path))


@pytest.mark.parametrize("name", ["identity", "alpaca_en_demo", "alpaca_zh_demo", "glaive_toolcall_en_demo",
                                  "glaive_toolcall_zh_demo"])
def test_llamafactory_demo_datasets_load_unchanged(name):
    folder = refdata("llamafactory_data")
    spec = resolve_dataset(name, folder)
    if name == "glaive_toolcall_zh_demo":  # two upstream rows have a tool result without a function call
        loaded = load(spec, on_bad_row="skip")
        assert len(loaded.skipped) == 2 and "row 198: wrong role order: turn 3 is `tool`" in loaded.skipped[0]
    else:
        loaded = load(spec)
        assert not loaded.skipped
    assert len(loaded.conversations) >= 90
    if name.startswith("glaive"):  # function calls become tool calls, observations tool results
        with_calls = [c for c in loaded.conversations if any(m.tool_calls for m in c.messages)]
        assert len(with_calls) > 100 and all(c.tools for c in with_calls)
        assert {m.role for c in with_calls for m in c.messages} == {"user", "assistant", "tool"}


def test_build_datasets_with_validation_split(tmp_path, tiny_tokenizer):
    write_dataset(tmp_path, [{"instruction": f"question {i}", "output": f"answer {i}"} for i in range(20)])
    cfg = build_config({"dataset": "demo", "dataset_dir": str(tmp_path), "val_size": 0.25, "cutoff_len": 64})
    prepared = build_stage_datasets(cfg, tiny_tokenizer, get_template("chatml"))
    train, evaluation, report = prepared.train, prepared.evaluation, prepared.report
    assert (len(train), len(evaluation)) == (15, 5)
    assert report.rows_per_dataset == {"demo": 20} and report.truncated == 0
    assert 0 < report.supervised_share < 1


def test_hub_datasets_load_through_datasets(tmp_path, tiny_tokenizer):
    """`hf_hub_url` goes through datasets.load_dataset (here a local folder laid out like a hub repo)."""
    repo = tmp_path / "repo" / "data"
    repo.mkdir(parents=True)
    (repo / "train.jsonl").write_text("\n".join(json.dumps({"instruction": f"q{i}", "output": f"a{i}"})
                                                for i in range(5)))
    (tmp_path / "dataset_info.json").write_text(json.dumps({"hubbed": {"hf_hub_url": str(tmp_path / "repo"),
                                                                       "split": "train"}}))
    spec = resolve_dataset("hubbed", tmp_path)
    loaded = load(spec)
    assert len(loaded.conversations) == 5 and loaded.conversations[0].source.endswith(":row 1")
    cfg = build_config({"dataset": "hubbed", "dataset_dir": str(tmp_path)})
    assert len(build_stage_datasets(cfg, tiny_tokenizer, get_template("chatml")).train) == 5


@pytest.mark.parametrize("encoding, guess", [("gb18030", "GB18030"), ("utf-16", "UTF-16"), ("cp1252", "CP1252")])
def test_a_data_file_that_is_not_utf8_names_file_offset_and_conversion(tmp_path, encoding, guess):
    rows = [{"instruction": "hi", "output": "ok"}, {"instruction": "你好, café", "output": "好的"}]
    if encoding == "cp1252":
        rows[1] = {"instruction": "café crème", "output": "déjà vu"}
    spec = write_dataset(tmp_path, rows)
    text = json.dumps(rows, ensure_ascii=False, indent=1)
    spec.path.write_bytes(text.encode(encoding))
    first_non_ascii = next(i for i, char in enumerate(text) if ord(char) > 127)
    offset = 0 if encoding == "utf-16" else first_non_ascii  # everything before it is ASCII: one byte each
    with pytest.raises(DataError, match=rf"demo.json is not UTF-8: byte {offset} .*looks like {guess}\. "
                                        rf"Convert it: iconv -f {guess} -t UTF-8"):
        load(spec)


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    spec = write_dataset(tmp_path, [{"instruction": "hi", "output": "ok"}])
    spec.path.write_bytes(b"\xef\xbb\xbf" + spec.path.read_bytes())
    assert len(load(spec).conversations) == 1


def test_an_unregistered_dataset_name_gets_a_did_you_mean(tmp_path):
    write_dataset(tmp_path, [{"instruction": "hi", "output": "ok"}], name="alpaca_en_demo")
    with pytest.raises(DataError, match=r"`alpaca_en_dem` is neither registered .*did you mean `alpaca_en_demo`"):
        resolve_dataset("alpaca_en_dem", tmp_path)


@pytest.mark.parametrize("stage, rows", [
    ("sft", [{"instruction": "q", "output": "a"}, {"instruction": "q2", "output": "a2", "system": "be brief"}]),
    ("dpo", [{"instruction": "q", "chosen": "a", "rejected": "b"},
             {"instruction": "q2", "chosen": "a", "rejected": "b", "system": "be brief"}]),
])
def test_a_template_error_names_the_row_that_caused_it(tmp_path, tiny_tokenizer, stage, rows):
    from lmforge.data.templates.template import Template
    from lmforge.errors import TemplateError

    entry = {"ranking": True, "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected",
                                          "system": "system"}} if stage == "dpo" else {
        "columns": {"prompt": "instruction", "response": "output", "system": "system"}}
    write_dataset(tmp_path, rows, entry=entry)
    cfg = build_config({"dataset": "demo", "dataset_dir": str(tmp_path), "stage": stage, "cutoff_len": 64})
    bare = Template(name="bare", format_user="Q: {{content}}\n", format_assistant="A: {{content}}\n")
    with pytest.raises(TemplateError, match=r"demo.json:row 2: template `bare` has no system slot"):
        build_stage_datasets(cfg, tiny_tokenizer, bare)
