"""Constrained decoding (`json_schema`) per row of a batched `generate` call, on the tiny random model."""

import json
import threading

import pytest

from lmforge.config import build_config
from lmforge.data.templates.template import Message
from lmforge.errors import ConfigError
from lmforge.infer.factory import create_engine
from lmforge.infer.structured import structured_available

pytestmark = pytest.mark.skipif(not structured_available(), reason="needs xgrammar: pip install -e '.[structured]'")
SCHEMA = json.dumps({"type": "object", "properties": {"id": {"type": "integer", "minimum": 0, "maximum": 99}},
                     "required": ["id"], "additionalProperties": False})


@pytest.fixture(scope="module")
def engine():
    engine = create_engine(build_config({"model_name_or_path": "builtin:tiny-llama", "template": "chatml",
                                         "do_sample": False, "max_new_tokens": 24}))
    yield engine
    engine.close()


def test_constrained_and_free_rows_share_one_call(engine):
    engine.worker.batch_sizes.clear()
    answers: dict[int, str] = {}
    barrier = threading.Barrier(4)

    def ask(i):
        barrier.wait(timeout=30)
        options = engine.options(json_schema=SCHEMA if i % 2 == 0 else None)
        [candidate] = engine.candidates([Message("user", f"Item {i}?")], options=options)
        answers[i] = candidate.text

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert max(engine.worker.batch_sizes) > 1  # the rows were decoded together
    for i in (0, 2):
        parsed = json.loads(answers[i])
        assert set(parsed) == {"id"} and 0 <= parsed["id"] <= 99
    assert not any(answers[i].lstrip().startswith("{") for i in (1, 3))  # free rows are left alone


def test_a_schema_is_checked_before_decoding(engine):
    with pytest.raises(ConfigError, match=r"json_schema cannot be used: .*Unsupported type"):
        engine.check_options(engine.options(json_schema='{"type": "objectx"}'))
    with pytest.raises(ConfigError, match="not beam search"):
        engine.options(json_schema=SCHEMA, num_beams=2)
