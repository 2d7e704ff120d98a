"""A request queue with one worker thread that owns the model.

Concurrent requests are not served one at a time: the worker takes the oldest pending job and every
other pending job that can share its decoding call (same sampling settings), up to `max_rows`
answers, and runs them as one left-padded batch. Jobs that cannot share a call (beam search, a
seeded request, scoring) run alone, in arrival order.
"""

import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from lmforge.data.multimodal.plugin import ProcessedMedia
from lmforge.infer.options import GenerationOptions


@dataclass
class Row:
    """One answer to generate: the prompt, its options, and where streamed text goes."""

    prompt_ids: list[int]
    options: GenerationOptions
    on_text: Callable[[str], None] | None = None
    index: int = 0  # which of its request's candidates this row is (vLLM derives per-row seeds from it)
    media: ProcessedMedia | None = None  # the prompt's processed images (vision-language models)


@dataclass
class _Job:
    future: Future
    key: Hashable | None = None  # batch jobs: rows with equal keys share one call
    rows: list[Row] = field(default_factory=list)
    action: Callable[[], Any] | None = None  # solo jobs


class BatchWorker:
    def __init__(self, run_rows: Callable[[list[Row]], list[Any]], *, max_rows: int,
                 gather_window_s: float = 0.005, name: str = "lmforge-generate") -> None:
        self.run_rows = run_rows
        self.max_rows = max_rows
        self.gather_window_s = gather_window_s  # wait this long for concurrent requests to arrive
        self._jobs: list[_Job] = []
        self._cond = threading.Condition()
        self._closed = False
        self.batch_sizes: list[int] = []  # rows per decoding call, for tests and benchmarks
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit_rows(self, rows: list[Row], key: Hashable) -> Future:
        """Future of the rows' results, in order; rows of one job always share a call."""
        return self._put(_Job(Future(), key=key, rows=rows))

    def submit_call(self, action: Callable[[], Any]) -> Future:
        """Run `action` alone on the worker thread (the only thread that touches the model)."""
        return self._put(_Job(Future(), action=action))

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=60)

    def _put(self, job: _Job) -> Future:
        with self._cond:
            if self._closed:
                raise RuntimeError("the generation worker is closed")
            self._jobs.append(job)
            self._cond.notify()
        return job.future

    def _take(self) -> list[_Job] | None:
        with self._cond:
            while not self._jobs and not self._closed:
                self._cond.wait()
            if not self._jobs:
                return None
            first = self._jobs[0]
        if first.key is not None and self.gather_window_s:
            time.sleep(self.gather_window_s)
        with self._cond:
            self._jobs.remove(first)
            if first.key is None:
                return [first]
            taken, rows = [first], len(first.rows)
            for job in list(self._jobs):
                if job.key == first.key and rows + len(job.rows) <= self.max_rows:
                    taken.append(job)
                    rows += len(job.rows)
                    self._jobs.remove(job)
            return taken

    def _loop(self) -> None:
        while (jobs := self._take()) is not None:
            live = [job for job in jobs if job.future.set_running_or_notify_cancel()]
            if not live:
                continue
            try:
                if live[0].action is not None:
                    live[0].future.set_result(live[0].action())
                    continue
                rows = [row for job in live for row in job.rows]
                self.batch_sizes.append(len(rows))
                results = self.run_rows(rows)
                start = 0
                for job in live:
                    job.future.set_result(results[start:start + len(job.rows)])
                    start += len(job.rows)
            except BaseException as err:
                for job in live:
                    if not job.future.done():
                        job.future.set_exception(err)
