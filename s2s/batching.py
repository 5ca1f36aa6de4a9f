"""Concurrent requests decoded together: a small batching queue in front of the translators.

A server thread calls ``RequestBatcher.translate(translator, text, settings)`` and blocks until
its result is ready. One worker thread takes the waiting requests, groups those with the same
model and settings, and decodes each group with one ``Translator.translate_batch`` call (which
sorts the sentences by length and runs batched beam search). Requests that arrive while a batch
is decoding form the next batch, so under load many requests share each pass through the model
while a lone request is decoded at once; ``max_wait`` (default 0) makes a request wait that many
seconds for company as well. Measured on 2 cores (``scripts/load_app.py``), waiting 5 ms added
5 ms to a lone request and no throughput under load.

Sampling requests are decoded alone: their random draws depend on the batch they are in, and
a request with a seed must give the same samples whoever else is asking. Greedy and beam
search give the same outputs batched or alone (scores agree to float rounding).
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any

from .translator import DecodeSettings, Translator


@dataclasses.dataclass
class _Request:
    translator: Translator
    text: str
    settings: DecodeSettings
    future: Future


class RequestBatcher:
    """Decodes concurrent ``translate`` calls in batches of up to ``max_batch`` texts."""

    def __init__(self, max_batch: int = 32, max_wait: float = 0.0) -> None:
        if not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be a positive integer, got {max_batch!r}")
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._queue: queue.Queue[_Request] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="s2s-batcher", daemon=True)
        self._worker.start()

    def translate(self, translator: Translator, text: str, settings: DecodeSettings) -> dict[str, Any]:
        """The result of ``translator.translate(text, settings)``, decoded with other waiting
        requests; errors are raised here, in the caller's thread."""
        if not isinstance(text, str):  # checked here so that one bad request cannot fail a whole batch
            raise ValueError(f"text must be a string, got {type(text).__name__}")
        if self.max_batch == 1 or settings.strategy == "sample":
            return translator.translate(text, settings)
        request = _Request(translator, text, settings, Future())
        self._queue.put(request)
        return request.future.result()

    def _take_waiting(self) -> list[_Request]:
        """The next request, and the others that arrive within ``max_wait`` (up to max_batch)."""
        requests = [self._queue.get()]
        deadline = time.monotonic() + self.max_wait
        while len(requests) < self.max_batch:
            try:
                requests.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        return requests

    def _run(self) -> None:
        while True:
            groups: dict[tuple[int, DecodeSettings], list[_Request]] = {}
            for request in self._take_waiting():
                groups.setdefault((id(request.translator), request.settings), []).append(request)
            for requests in groups.values():
                try:
                    results = requests[0].translator.translate_batch([r.text for r in requests], requests[0].settings)
                except Exception as error:  # noqa: BLE001 - handed to every caller of the group
                    for request in requests:
                        request.future.set_exception(error)
                    continue
                for request, result in zip(requests, results):
                    request.future.set_result(result)
