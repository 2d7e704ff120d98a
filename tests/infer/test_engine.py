"""The transformers engine on builtin:tiny-llama: batching, streaming, stop strings, candidates."""

import threading

import pytest
import torch

from lmforge.config import build_config
from lmforge.data.templates.template import Message
from lmforge.errors import ModelError, TemplateError
from lmforge.infer.factory import create_engine

PROMPTS = ["Hello!", "Tell me about the sea.", "Why is the sky blue?", "Count to three.", "Name a color."]


@pytest.fixture(scope="module")
def engine():
    cfg = build_config({"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "do_sample": False,
                        "max_new_tokens": 12})
    engine = create_engine(cfg)
    yield engine
    engine.close()


def ask(text):
    return [Message("user", text)]


def test_auto_backend_without_vllm_is_transformers(engine):
    assert engine.backend == "huggingface"


def test_stream_chat_adds_up_to_chat(engine):
    assert "".join(engine.stream_chat(ask("Hello!"))) == engine.chat(ask("Hello!"))


def test_concurrent_requests_share_one_batch_and_match_one_at_a_time(engine):
    alone = [engine.chat(ask(p)) for p in PROMPTS]
    engine.worker.batch_sizes.clear()
    results = [None] * len(PROMPTS)
    barrier = threading.Barrier(len(PROMPTS))

    def ask_concurrently(i):
        barrier.wait(timeout=30)
        results[i] = engine.chat(ask(PROMPTS[i]))

    threads = [threading.Thread(target=ask_concurrently, args=(i,)) for i in range(len(PROMPTS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert max(engine.worker.batch_sizes) > 1  # at least some requests were decoded together
    assert results == alone  # left padding does not change greedy answers


def test_rows_with_different_limits_share_a_call(engine):
    options_short, options_long = engine.options(max_new_tokens=3), engine.options(max_new_tokens=10)
    short = engine.candidates(ask("Hello!"), options=options_short)[0]
    long = engine.candidates(ask("Hello!"), options=options_long)[0]
    prompts = [engine.encode(ask("Hello!"))]
    engine.worker.batch_sizes.clear()
    future_short = engine.worker.submit_rows([_row(prompts[0], options_short)], ("k",))
    future_long = engine.worker.submit_rows([_row(prompts[0], options_long)], ("k",))
    together = future_short.result()[0], future_long.result()[0]
    assert engine.worker.batch_sizes == [2]
    assert together == (short, long)
    assert len(short.token_ids) == 3 and short.finish_reason == "length"


def _row(prompt, options):
    from lmforge.infer.batching import Row

    return Row(prompt, options)


def test_stop_strings_end_the_answer_in_chat_and_stream(engine):
    full = engine.chat(ask("Tell me about the sea."))
    stop = full[len(full) // 2:len(full) // 2 + 2]
    assert stop.strip(), full
    expected = full[:full.index(stop)]
    options = engine.options(stop=[stop])
    assert engine.chat(ask("Tell me about the sea."), options=options) == expected
    assert "".join(engine.stream_chat(ask("Tell me about the sea."), options=options)) == expected
    [candidate] = engine.candidates(ask("Tell me about the sea."), options=options)
    assert candidate.finish_reason == "stop"


def test_n_sampled_candidates_come_with_model_logprobs(engine):
    prompt = engine.encode(ask("Hello!"))
    candidates = engine.candidates(ask("Hello!"), options=engine.options(n=3, do_sample=True, seed=1))
    assert len(candidates) == 3 and len({c.text for c in candidates}) > 1
    again = engine.candidates(ask("Hello!"), options=engine.options(n=3, do_sample=True, seed=1))
    assert [c.text for c in again] == [c.text for c in candidates]  # a seed makes sampling reproducible
    # the log-probabilities are the model's own: recompute one by hand
    chosen = candidates[0]
    ids = torch.tensor([prompt + list(chosen.token_ids)])
    with torch.no_grad():
        logits = engine.model(ids).logits[0, len(prompt) - 1:-1].float()
    manual = torch.log_softmax(logits, -1).gather(-1, ids[0, len(prompt):, None]).sum()
    assert chosen.logprob == pytest.approx(float(manual), abs=1e-3)


def test_beam_candidates_are_transformers_best_beams(engine):
    options = engine.options(n=3, method="beam", num_beams=4)
    candidates = engine.candidates(ask("Hello!"), options=options)
    prompt = engine.encode(ask("Hello!"))
    out = engine.model.generate(torch.tensor([prompt]), num_beams=4, num_return_sequences=3, do_sample=False,
                                max_new_tokens=12, eos_token_id=engine.eos_token_ids,
                                pad_token_id=engine.pad_token_id, output_scores=True, return_dict_in_generate=True,
                                temperature=None, top_p=None, top_k=None)
    assert [c.beam_score for c in candidates] == pytest.approx(out.sequences_scores.tolist(), abs=1e-5)
    for candidate, sequence in zip(candidates, out.sequences, strict=True):
        assert list(candidate.token_ids) == sequence[len(prompt):len(prompt) + len(candidate.token_ids)].tolist()
        assert candidate.logprob is not None


def test_diverse_beam_gives_one_best_beam_per_group_first(engine):
    options = engine.options(n=3, method="diverse_beam", num_beams=6, num_beam_groups=3, diversity_penalty=5.0)
    candidates = engine.candidates(ask("Hello!"), options=options)
    assert len(candidates) == 3
    assert len({c.token_ids[0] for c in candidates}) == 3  # each group took a different first token


def test_diverse_sample_keeps_distinct_answers_best_first(engine):
    options = engine.options(n=3, method="diverse_sample", do_sample=True, oversample=3, seed=0)
    candidates = engine.candidates(ask("Hello!"), options=options)
    assert len(candidates) == 3
    scores = [c.score() for c in candidates]
    assert scores == sorted(scores, reverse=True)


def test_n_candidates_stream_interleaved_and_finish(engine):
    deltas = list(engine.stream_candidates(ask("Hello!"), options=engine.options(n=2, do_sample=True, seed=3,
                                                                                    max_new_tokens=5)))
    assert {d.index for d in deltas} == {0, 1}
    finished = {d.index: d.finish_reason for d in deltas if d.finish_reason}
    assert set(finished) == {0, 1} and set(finished.values()) <= {"stop", "length"}


def test_images_for_a_text_model_and_bad_tools_fail_with_the_reason(engine):
    with pytest.raises(ModelError, match="cannot take images: it is served as a text-only model"):
        engine.chat(ask("What is this?"), images=[b"fake"])
    with pytest.raises(TemplateError, match=r"needs a non-empty string `function\.name`"):
        engine.chat(ask("Weather?"), tools=[{"type": "function", "function": {"description": "w"}}])
