"""Concurrent requests decoded together: a small batching queue in front of the translators.

A server thread calls ``RequestBatcher.translate_all([(translator, text, settings), ...])`` and
blocks until the results are ready. One worker thread takes the waiting requests, groups those with the same
model and settings, and decodes each group with one ``Translator.translate_batch`` call (which
sorts the sentences by length and runs batched beam search); different groups decode at the same
time, on threads of their own (torch releases the GIL). ``translate_all`` asks for several
translations at once, as the page's greedy and beam columns do: on 2 cores that took a Translate
click's server time from 115-122 to 100-106 ms (medians of 30, ``parallel`` 1 against 2).

Requests that arrive while a batch is decoding form the next batch, so under load many requests
share each pass through the model while a lone request is decoded at once; ``max_wait``
(default 0) makes a request wait that many seconds for company as well; on 2 cores
(``scripts/load_app.py``, one run each) a 5 ms wait gave no more throughput under load.

Sampling requests are decoded alone: their random draws depend on the batch they are in, and
a request with a seed must give the same samples whoever else is asking. Greedy and beam
search give the same outputs batched or alone (scores agree to float rounding).
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from .translator import DecodeSettings, Translator


@dataclasses.dataclass
class _Request:
    translator: Translator
    text: str
    settings: DecodeSettings
    future: Future


class RequestBatcher:
    """Decodes concurrent ``translate_all`` calls in batches of up to ``max_batch`` texts; groups with
    different models or settings in one batch decode at the same time, up to ``parallel`` at once."""

    def __init__(self, max_batch: int = 32, max_wait: float = 0.0, parallel: int = 2) -> None:
        if not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be a positive integer, got {max_batch!r}")
        if not isinstance(parallel, int) or parallel < 1:
            raise ValueError(f"parallel must be a positive integer, got {parallel!r}")
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._queue: queue.Queue[list[_Request]] = queue.Queue()
        self._groups = ThreadPoolExecutor(parallel, thread_name_prefix="s2s-decode")
        self._worker = threading.Thread(target=self._run, name="s2s-batcher", daemon=True)
        self._worker.start()

    def translate_all(self, jobs: list[tuple[Translator, str, DecodeSettings]]) -> list[dict[str, Any]]:
        """The results of ``translator.translate(text, settings)`` for each job, decoded with the
        other waiting requests. Jobs asked together (the page's greedy and beam columns, or two
        models side by side) join the same batch, so that those with different settings decode at
        the same time. Errors are raised in the caller's thread."""
        for _, text, _ in jobs:  # checked here so that one bad request cannot fail a whole batch
            if not isinstance(text, str):
                raise ValueError(f"text must be a string, got {type(text).__name__}")
        batched = {index: _Request(translator, text, settings, Future())
                   for index, (translator, text, settings) in enumerate(jobs)
                   if self.max_batch > 1 and settings.strategy != "sample"}
        if batched:
            self._queue.put(list(batched.values()))
        alone = {index: translator.translate(text, settings)  # while the batch decodes
                 for index, (translator, text, settings) in enumerate(jobs) if index not in batched}
        return [batched[index].future.result() if index in batched else alone[index] for index in range(len(jobs))]

    def _take_waiting(self) -> list[_Request]:
        """The next requests, and the others that arrive within ``max_wait`` (up to max_batch, or
        more when one submission holds more)."""
        requests = self._queue.get()
        deadline = time.monotonic() + self.max_wait
        while len(requests) < self.max_batch:
            try:
                requests = requests + self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
        return requests

    def _run(self) -> None:
        while True:
            groups: dict[tuple[int, DecodeSettings], list[_Request]] = {}
            for request in self._take_waiting():
                groups.setdefault((id(request.translator), request.settings), []).append(request)
            wait([self._groups.submit(self._decode, requests) for requests in groups.values()])

    @staticmethod
    def _decode(requests: list[_Request]) -> None:
        """One group (same model and settings) in one ``translate_batch`` call."""
        try:
            results = requests[0].translator.translate_batch([r.text for r in requests], requests[0].settings)
        except Exception as error:  # noqa: BLE001 - handed to every caller of the group
            for request in requests:
                request.future.set_exception(error)
            return
        for request, result in zip(requests, results):
            request.future.set_result(result)
