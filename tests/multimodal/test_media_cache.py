"""The processed-media cache: a second epoch (or run) takes each example's media from disk, with exactly the
tensors of the first; a changed file or media option is a new entry, never a stale one."""

import shutil

import pytest
import torch

from lmforge.data.multimodal.collator import MultimodalCollator
from lmforge.data.multimodal.examples import MMEncoder, to_row
from lmforge.data.multimodal.media import MediaOptions
from lmforge.data.multimodal.media_cache import MediaCache, media_cache_dir
from lmforge.data.multimodal.plugin import mm_plugin_for
from lmforge.data.templates import get_template
from tests.multimodal.conftest import demo_conversations, load_vlm
from tests.refdata import refdata


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))


def counting_encoder(processor, options, calls):
    plugin = mm_plugin_for(processor)
    original = plugin.process_media

    def process_media(processor_, media, where):
        calls.append(where)
        return original(processor_, media, where)

    plugin.process_media = process_media  # this plugin instance only
    return MMEncoder(processor, plugin, get_template("chatml"), options, 2048,
                     media_cache=MediaCache(processor, plugin.name, options))


@pytest.mark.parametrize("family", ["qwen2_5_vl", "llava"])
def test_the_second_epoch_reads_processed_media_from_the_cache(family, tiny_vlm):
    processor, _ = load_vlm(tiny_vlm(family), family)
    calls = []
    collator = MultimodalCollator(counting_encoder(processor, MediaOptions(image_max_pixels=64 * 64), calls))
    rows = [to_row(conversation) for conversation in demo_conversations("mllm_demo.json", "images", 3)]
    first = collator(rows)
    assert len(calls) == 3 and any(media_cache_dir().rglob("*.safetensors"))
    second = collator(rows)
    assert len(calls) == 3  # nothing decoded or processed again
    assert first.keys() == second.keys()
    for key, value in first.items():
        assert torch.equal(value, second[key]), key


def test_a_changed_file_or_option_is_processed_again(tiny_vlm, tmp_path):
    processor, _ = load_vlm(tiny_vlm("qwen2_vl"), "qwen2_vl")
    image = tmp_path / "picture.jpg"
    shutil.copy(refdata("llamafactory_data", "mllm_demo_data", "1.jpg"), image)
    options = MediaOptions(image_max_pixels=64 * 64)
    cache = MediaCache(processor, "qwen2_vl", options)
    key = cache.key({"images": [str(image)]})
    assert key == MediaCache(processor, "qwen2_vl", options).key({"images": [str(image)]})  # across processes
    assert key != MediaCache(processor, "qwen2_vl", MediaOptions(image_max_pixels=32 * 32)).key(
        {"images": [str(image)]})
    shutil.copy(refdata("llamafactory_data", "mllm_demo_data", "2.jpg"), image)  # same path, new content
    assert cache.key({"images": [str(image)]}) != key
    assert cache.key({"images": [image.read_bytes()]}) is None  # bytes (chat, the API) are not cached


def test_the_data_report_counts_media_tokens_and_warns_when_they_blow_cutoff_len(tiny_vlm):
    from lmforge.config import build_config
    from tests.stage_data import build_stage_datasets

    processor, _ = load_vlm(tiny_vlm("qwen2_vl"), "qwen2_vl")
    options = {"stage": "sft", "dataset": "mllm_demo", "dataset_dir": str(refdata("llamafactory_data")),
               "image_max_pixels": 64 * 64}
    prepared = build_stage_datasets(build_config({**options, "cutoff_len": 1024}), processor.tokenizer,
                                    get_template("chatml"), processor)
    calls = []
    original = prepared.collator.encoder.plugin.process_media
    prepared.collator.encoder.plugin.process_media = lambda *args: calls.append(args[2]) or original(*args)
    batch = prepared.collator([prepared.train[i] for i in range(len(prepared.train))])
    assert calls == []  # the report processed every example's media once; the batch read them from the cache
    media_ids = torch.tensor(sorted(prepared.collator.encoder.plugin.media_token_ids(processor.tokenizer)))
    per_example = sorted(torch.isin(batch["input_ids"], media_ids).sum(-1).tolist())
    assert sorted(t for t, n in prepared.report.media_tokens.items() for _ in range(n)) == per_example
    lines = [text for _, text in prepared.report.lines()]
    assert f"media tokens per example with media: min {per_example[0]:,}" in "\n".join(lines)
    small = build_stage_datasets(build_config({**options, "cutoff_len": per_example[0]}), processor.tokenizer,
                                 get_template("chatml"), processor).report
    assert len(small.over_cutoff) == len(per_example)
    assert ("warn", next(text for text in [t for _, t in small.lines()] if text.startswith(
        f"{len(per_example)} examples have as many media tokens as cutoff_len or more"))) in small.lines()
    assert "mllm_demo.json:row 1 (" in small.over_cutoff[0]


def test_media_cache_false_processes_media_every_time_and_writes_nothing(tiny_vlm, monkeypatch):
    from lmforge.config.data import DataGroup
    from lmforge.data.multimodal.collator import multimodal_collator

    processor, _ = load_vlm(tiny_vlm("qwen2_vl"), "qwen2_vl")
    collator = multimodal_collator(DataGroup(media_cache=False, image_max_pixels=64 * 64), processor,
                                   get_template("chatml"))
    plugin, calls = collator.encoder.plugin, []
    original = plugin.process_media
    monkeypatch.setattr(plugin, "process_media", lambda *args: calls.append(args[2]) or original(*args))
    rows = [to_row(conversation) for conversation in demo_conversations("mllm_demo.json", "images", 2)]
    collator(rows), collator(rows)
    assert len(calls) == 4 and not media_cache_dir().exists()
    default = multimodal_collator(DataGroup(image_max_pixels=64 * 64), processor, get_template("chatml"))
    assert default.encoder.media_cache.max_bytes == 20 * 10**9


def test_past_the_cap_the_least_recently_used_entries_go(tiny_vlm):
    import os

    from lmforge.data.multimodal.plugin import ProcessedMedia

    processor, _ = load_vlm(tiny_vlm("qwen2_vl"), "qwen2_vl")
    entry = ProcessedMedia({"images": ["<|image_pad|>"]}, {"images": [{"pixel_values": torch.zeros(1000)}]})
    keys = [str(digit) * 64 for digit in range(1, 5)]
    probe = MediaCache(processor, "qwen2_vl", MediaOptions())
    probe.put(keys[0], entry)
    size = next(media_cache_dir().rglob("*.safetensors")).stat().st_size
    cache = MediaCache(processor, "qwen2_vl", MediaOptions(), max_bytes=int(size * 3.5))
    for key in keys[1:3]:
        cache.put(key, entry)
    for age, key in enumerate(keys[:3]):  # written in this order, long ago
        os.utime(cache._path(key), (1000 + age, 1000 + age))
    assert cache.get(keys[0]) is not None  # read now: the most recently used
    cache.put(keys[3], entry)  # 4 entries > 3.5: the least recently used go until 90% of the cap remains
    assert [cache.get(key) is not None for key in keys] == [True, False, True, True]


def test_an_entry_gives_back_its_tensors_values_and_key_order_or_is_not_written(tiny_vlm):
    from lmforge.data.multimodal.plugin import ProcessedMedia

    processor, _ = load_vlm(tiny_vlm("qwen2_vl"), "qwen2_vl")
    cache = MediaCache(processor, "qwen2_vl", MediaOptions())
    grid, half = torch.tensor([[1, 4, 4]]), torch.ones(1, 2, dtype=torch.bfloat16)
    entry = ProcessedMedia({"images": ["<|image_pad|>", "<|image_pad|>"], "videos": ["<|video_pad|>"]},
                           {"images": [{"pixel_values": torch.arange(6.0).view(2, 3)[:, 1:], "image_grid_thw": grid},
                                       {"image_grid_thw": grid, "pixel_values": half}],
                            "videos": [{"fps": [2.0], "frames": 3, "pixel_values_videos": torch.zeros(0, 4)}]})
    cache.put("a" * 64, entry)
    back = cache.get("a" * 64)
    assert back.runs == entry.runs
    for kind, items in entry.tensors.items():
        for item, read in zip(items, back.tensors[kind], strict=True):
            assert list(read) == list(item)  # the processor's key order
            for name, value in item.items():
                same = torch.equal(read[name], value) and read[name].dtype == value.dtype if torch.is_tensor(value) \
                    else read[name] == value and type(read[name]) is type(value)
                assert same, (kind, name)
    tupled = ProcessedMedia({"images": ["<|image_pad|>"]}, {"images": [{"size": (4, 4), "pixel_values": grid}]})
    cache.put("b" * 64, tupled)  # JSON would give a list back: processed anew each time instead
    assert cache.get("b" * 64) is None and not cache._path("b" * 64).exists()
