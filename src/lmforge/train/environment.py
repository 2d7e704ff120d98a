"""Environment variables that libraries read while a run is set up, set for that span and then restored: a
program that trains in-process and goes on (a test, a notebook) finds its environment as it was."""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


@contextmanager
def environment_set(variables: Mapping[str, str]) -> Iterator[None]:
    """`variables` in this process's environment inside the block; each one as before after it."""
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
