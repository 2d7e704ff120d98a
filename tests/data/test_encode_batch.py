"""`encode_batch` (chunked Rust calls in a background thread, bounds from the encodings) gives exactly
`encode_conversation`'s ids and turns, in order."""

import json
import unicodedata

import pytest
from tokenizers import Tokenizer, normalizers

from lmforge.data.templates import Message, encoding, get_template
from lmforge.data.templates.encoding import Chat, encode_batch, encode_conversation
from tests.data.real_tokenizers import real_tokenizer
from tests.refdata import refdata

TRICKY = [
    [Message("user", "Hi 👋🏽 there"), Message("assistant", "Héllo — ça va? 你好，世界！")],
    [Message("user", "  leading spaces\n\n"), Message("assistant", "\n\ntrailing newlines\n\n")],
    [Message("user", "a"), Message("assistant", "b"), Message("user", "c\u0301 e\u0301"), Message("assistant", "🇫🇷")],
    [Message("user", "tabs\tand\r\nCRLF"), Message("assistant", "   ")],
]


def _chats(system: str | None) -> list[Chat]:
    rows = json.loads(refdata("llamafactory_data", "alpaca_zh_demo.json").read_text())[:40]
    rows += json.loads(refdata("llamafactory_data", "alpaca_en_demo.json").read_text())[:40]
    chats = [Chat([Message("user", r["instruction"] + ("\n" + r["input"] if r["input"] else "")),
                   Message("assistant", r["output"])]) for r in rows]
    return chats + [Chat(messages, system=system) for messages in TRICKY]


@pytest.mark.parametrize(("tokenizer_name", "template_name", "system"),
                         [("qwen", "qwen", " system with spaces "), ("llama3", "llama3", "Be brief.\n"),
                          ("llama2", "llama2", " system "), ("mistral_v3", "mistral", None)])
@pytest.mark.parametrize("chunk", [7, encoding.ENCODE_CHUNK])
def test_batch_encoding_equals_one_by_one(tokenizer_name, template_name, system, chunk, tmp_path_factory, monkeypatch):
    monkeypatch.setattr(encoding, "ENCODE_CHUNK", chunk)  # 7: many chunks, a short last one
    tokenizer = real_tokenizer(tokenizer_name, tmp_path_factory.getbasetemp() / "real-tokenizers")
    template = get_template(template_name)
    chats = _chats(system)
    batched = encode_batch(template, tokenizer, chats, train=True)
    for chat, encoded in zip(chats, batched, strict=True):
        one = encode_conversation(template, tokenizer, chat.messages, system=chat.system, train=True)
        assert encoded == one, chat.messages


def test_batch_encoding_of_nothing(tmp_path_factory):
    tokenizer = real_tokenizer("qwen", tmp_path_factory.getbasetemp() / "real-tokenizers")
    assert encode_batch(get_template("qwen"), tokenizer, [], train=True) == []


def test_an_identity_unicode_normalizer_is_skipped_and_put_back(tmp_path_factory):
    tokenizer = real_tokenizer("qwen", tmp_path_factory.getbasetemp() / "real-tokenizers")
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.normalizer = normalizers.NFC()  # as Qwen's own tokenizer.json has it
    composed, decomposed = ["café <|im_end|> 你好"], ["cafe\u0301 <|im_end|> 你好"]  # the second is not NFC
    for texts in (composed, decomposed):
        got = encoding._encode_texts(backend, texts)
        want = backend.encode_batch(texts, add_special_tokens=False)
        assert [e.ids for e in got] == [e.ids for e in want] and [e.offsets for e in got] == [e.offsets for e in want]
        assert type(backend.normalizer).__name__ == "NFC"  # put back
    assert encoding._encode_texts(backend, decomposed)[0].ids == encoding._encode_texts(backend, composed)[0].ids


class _Watched:
    """A backend tokenizer that records every attribute set on it (the encoder must set none)."""

    def __init__(self, backend):
        object.__setattr__(self, "backend", backend)
        object.__setattr__(self, "changed", [])

    def __getattr__(self, name):
        return getattr(self.backend, name)

    def __setattr__(self, name, value):
        self.changed.append(name)
        setattr(self.backend, name, value)


@pytest.mark.parametrize("tokenizer_name", ["qwen", "llama3", "llama2", "mistral_v3"])  # mistral: 771 added tokens
def test_normal_form_texts_skip_the_normalizer_without_touching_the_shared_tokenizer(tokenizer_name,
                                                                                       tmp_path_factory):
    tokenizer = real_tokenizer(tokenizer_name, tmp_path_factory.getbasetemp() / "real-tokenizers")
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    if backend.normalizer is None:
        backend.normalizer = normalizers.NFC()
    watched = _Watched(backend)
    texts = [unicodedata.normalize("NFC", "".join(m.content for m in chat.messages) + " <|im_end|> <s>[INST]")
             for chat in _chats(None)]  # all in normal form: the normalizer-free tokenizer encodes them
    plain = encoding._without_normalizer(watched)
    assert plain.normalizer is None and plain.get_vocab_size() == backend.get_vocab_size()
    got = encoding._encode_texts(watched, texts, plain)
    want = backend.encode_batch(texts, add_special_tokens=False)
    assert [e.ids for e in got] == [e.ids for e in want] and [e.offsets for e in got] == [e.offsets for e in want]
    assert watched.changed == [] and type(backend.normalizer).__name__ == type(watched.normalizer).__name__
