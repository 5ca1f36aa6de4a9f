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

Fair to everyone: a batch takes the texts of up to ``max_batch`` waiting submissions in turn, one
text of each before a second of any, up to ``round_work`` decoder row-steps (``RequestCost.work``:
about a second of decoding), so a submission of a thousand sentences is decoded over many short batches and a one-sentence
request that arrives meanwhile joins the next one instead of waiting for it all. Each text is
decoded with the others of its group in one call, so an error (a sentence over the memory budget,
say) reaches only the caller whose text it is: a failed group is decoded again text by text. A
caller waits at most ``timeout`` seconds; then its texts not yet started are dropped and it gets
``Busy``.

Small submissions (``FAST_LANE_WORK``) skip the queue while one of ``parallel`` fast lanes is
free: decoded at once in the caller's thread, they are not held up by a round of large ones, and
under a flood of small ones the rest still share batches.

Sampling requests are decoded alone: their random draws depend on the batch they are in, and
a request with a seed must give the same samples whoever else is asking. Greedy and beam
search give the same outputs batched or alone (scores agree to float rounding).
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from .admission import Busy
from .translator import DecodeSettings, Translator

DEFAULT_ROUND_WORK = 20_000  # decoder row-steps per batch: about a second of en-fr's batched beam search here
DEFAULT_TIMEOUT = 120.0  # seconds a caller waits for its results
# A submission of at most this much work (a sentence at beam 16, a few at beam 5: tens of
# milliseconds) is decoded at once in its caller's thread while one of ``parallel`` lanes is free.
FAST_LANE_WORK = 2_000


@dataclasses.dataclass
class _Request:
    translator: Translator
    text: str
    settings: DecodeSettings
    work: int
    details: bool
    future: Future


class RequestBatcher:
    """Decodes concurrent ``translate_all`` calls in batches of the texts of up to ``max_batch``
    submissions, taken in turn up to ``round_work`` row-steps; groups with different
    models or settings in one batch decode at the same time, up to ``parallel`` at once."""

    def __init__(self, max_batch: int = 32, max_wait: float = 0.0, parallel: int = 2,
                 round_work: int = DEFAULT_ROUND_WORK, timeout: float = DEFAULT_TIMEOUT) -> None:
        for name, value in (("max_batch", max_batch), ("parallel", parallel), ("round_work", round_work)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.max_batch, self.max_wait, self.round_work, self.timeout = max_batch, max_wait, round_work, timeout
        self._waiting: collections.deque[collections.deque[_Request]] = collections.deque()  # one per submission
        self._arrived = threading.Condition()
        self._groups = ThreadPoolExecutor(parallel, thread_name_prefix="s2s-decode")
        self._fast_lane = threading.BoundedSemaphore(parallel)
        self._worker = threading.Thread(target=self._run, name="s2s-batcher", daemon=True)
        self._worker.start()

    def translate_all(self, jobs: list[tuple[Translator, str, DecodeSettings]],
                      works: list[int] | None = None, details: bool = True) -> list[dict[str, Any]]:
        """The results of ``translator.translate_batch([text], settings, details=details)`` for each
        job, decoded with the other waiting requests; ``works`` is each job's ``RequestCost.work``
        (1 each when not given). Jobs asked together (the page's greedy and beam columns, or two models side by
        side) join the same batch, so that those with different settings decode at the same time.
        Errors are raised in the caller's thread; ``Busy`` after ``timeout`` seconds."""
        for _, text, _ in jobs:  # checked here so that one bad request cannot fail a whole batch
            if not isinstance(text, str):
                raise ValueError(f"text must be a string, got {type(text).__name__}")
        works = works or [1] * len(jobs)
        if sum(works) <= FAST_LANE_WORK and self._fast_lane.acquire(blocking=False):
            try:  # small, and a lane is free: decoded now, not behind a batch under way
                return [translator.translate_batch([text], settings, details=details)[0]
                        for translator, text, settings in jobs]
            finally:
                self._fast_lane.release()
        batched = {index: _Request(translator, text, settings, work, details, Future())
                   for index, ((translator, text, settings), work) in enumerate(zip(jobs, works))
                   if self.max_batch > 1 and settings.strategy != "sample"}
        if batched:
            with self._arrived:
                self._waiting.append(collections.deque(batched.values()))
                self._arrived.notify()
        alone = {index: translator.translate_batch([text], settings, details=details)[0]  # while the batch decodes
                 for index, (translator, text, settings) in enumerate(jobs) if index not in batched}
        deadline = time.monotonic() + self.timeout
        try:
            results = {index: request.future.result(timeout=max(0.0, deadline - time.monotonic()))
                       for index, request in batched.items()}
        except FutureTimeout:
            for request in batched.values():
                request.future.cancel()  # those not started are dropped from the queue
            raise Busy("decode", message=f"This request did not finish within {self.timeout:.0f} s: the server is "
                                         "busy, or the request is large. Try again, or send fewer texts.") from None
        return [results[index] if index in batched else alone[index] for index in range(len(jobs))]

    def _take_batch(self) -> list[_Request]:
        """The next batch: the texts of up to ``max_batch`` waiting submissions (the longest waiting
        first), taken in turn (one of each, then a second...) until ``round_work`` row-steps are
        reached (at least one text); cancelled texts are dropped. A submission with texts left goes
        behind those that had no turn. Waits for a submission, and ``max_wait`` more for company."""
        with self._arrived:
            self._arrived.wait_for(lambda: bool(self._waiting))
            deadline = time.monotonic() + self.max_wait
            while len(self._waiting) < self.max_batch and time.monotonic() < deadline:
                self._arrived.wait(timeout=max(0.0, deadline - time.monotonic()))
            taking = [self._waiting.popleft() for _ in range(min(self.max_batch, len(self._waiting)))]
            batch: list[_Request] = []
            work = 0
            while work < self.round_work and any(taking):
                for submission in taking:
                    if submission and work < self.round_work:
                        request = submission.popleft()
                        if request.future.set_running_or_notify_cancel():
                            batch.append(request)
                            work += request.work
            self._waiting.extend(submission for submission in taking if submission)
            return batch
    def _run(self) -> None:
        while True:
            groups: dict[tuple[int, DecodeSettings, bool], list[_Request]] = {}
            for request in self._take_batch():
                groups.setdefault((id(request.translator), request.settings, request.details), []).append(request)
            wait([self._groups.submit(self._decode, requests) for requests in groups.values()])

    @classmethod
    def _decode(cls, requests: list[_Request]) -> None:
        """One group (same model, settings and details) in one ``translate_batch`` call; a group that
        fails is decoded again text by text, so each error reaches only its own caller."""
        try:
            first = requests[0]
            results = first.translator.translate_batch([r.text for r in requests], first.settings, details=first.details)
        except Exception as error:  # noqa: BLE001 - handed to the caller it belongs to
            if len(requests) == 1:
                requests[0].future.set_exception(error)
            else:
                for request in requests:
                    cls._decode([request])
            return
        for request, result in zip(requests, results):
            request.future.set_result(result)
