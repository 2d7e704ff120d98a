"""Stop strings, incremental detokenization and near-duplicate selection (no model needed)."""

import pytest

from lmforge.infer.diversity import edit_similarity, ngram_similarity, select_diverse
from lmforge.infer.stops import IncrementalDecoder, first_stop, held_back


def test_first_stop_is_the_earliest_of_any_stop_string():
    assert first_stop("one two three", ["three", "two"]) == 4
    assert first_stop("one two", ["four"]) is None
    assert first_stop("abc", [""]) is None


def test_held_back_is_the_longest_suffix_that_could_start_a_stop_string():
    assert held_back("hello <|e", ["<|end|>"]) == 3
    assert held_back("hello <", ["<|end|>", "<x"]) == 1
    assert held_back("hello", ["<|end|>"]) == 0


def _stream(tokenizer, text, stops):
    decoder = IncrementalDecoder(tokenizer, stops)
    pieces = [decoder.push(token) for token in tokenizer.encode(text, add_special_tokens=False)]
    pieces.append(decoder.finish())
    return decoder, pieces


def test_streamed_pieces_add_up_to_the_text_and_never_show_a_stop_string(tiny_tokenizer):
    decoder, pieces = _stream(tiny_tokenizer, "The cat sat on the mat. STOP and more text", ["STOP"])
    assert decoder.stopped
    assert "".join(pieces) == decoder.text == "The cat sat on the mat. "
    assert all("S" not in piece for piece in pieces)
    assert tiny_tokenizer.decode(decoder.token_ids) in decoder.text


def test_stream_without_stop_strings_is_the_whole_text(tiny_tokenizer):
    text = "A quiet river runs — ünïcode too."
    decoder, pieces = _stream(tiny_tokenizer, text, [])
    assert "".join(pieces) == text and not decoder.stopped
    assert all("\ufffd" not in piece for piece in pieces)


def test_similarities():
    assert ngram_similarity("the cat sat down", "the cat sat down") == 1.0
    assert ngram_similarity("the cat sat down", "a dog ran off") == 0.0
    assert 0 < ngram_similarity("the cat sat down", "the cat sat up") < 1
    assert edit_similarity("hello", "hello") == 1.0
    assert edit_similarity("你好", "你好啊") == pytest.approx(0.8)


def test_select_diverse_drops_near_duplicates_and_keeps_the_best_first():
    texts = ["Hello there friend", "Hello there friend!", "Good morning to you", "Hi", "Hello there friend ."]
    scores = [-1.0, -0.5, -2.0, -3.0, -0.1]
    kept = select_diverse(texts, scores, 3, max_similarity=0.6, similarity="ngram")
    assert kept == [4, 2, 3]  # the best "Hello there friend" variant, then the distinct answers


def test_select_diverse_fills_up_when_too_few_are_distinct():
    kept = select_diverse(["a b c", "a b c", "a b c"], [0.0, -1.0, -2.0], 2, max_similarity=0.5)
    assert kept == [0, 1]
