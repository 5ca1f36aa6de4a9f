"""One gate for every model call of the server: a concurrency limit per kind of work and a
bounded wait, beyond which the caller is told the server is busy instead of piling up work.

Kinds: ``decode`` (translate, re-decode, steer, score, compare: short, and batched together),
``saliency`` (gradients: seconds of both cores and hundreds of MB each) and ``upload`` (reading
a training upload). Every entry point (the page's events, its server functions, the named API
endpoints) goes through ``Gate.admit``, so twenty saliency requests sent at once run one or two at
a time while a translation still gets in. After a saliency call the allocator is asked to give
freed memory back to the system (``malloc_trim``), so resident memory returns after a burst.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import threading
from typing import Iterator

DEFAULT_LIMITS = {"decode": 32, "saliency": 1, "upload": 1}
DEFAULT_MAX_WAIT = 20.0  # seconds a call may wait for its turn before it is told to come back
RETRY_AFTER = 5  # seconds, said to a caller that was turned away


class Busy(RuntimeError):
    """The server is at its limit for this kind of work; ``retry_after`` seconds is a fair wait."""

    def __init__(self, kind: str, retry_after: int = RETRY_AFTER) -> None:
        super().__init__(f"The server is busy with other {kind} requests: try again in a few seconds.")
        self.kind, self.retry_after = kind, retry_after


def _malloc_trim() -> None:
    """Give freed heap memory back to the system (glibc); nothing elsewhere."""
    name = ctypes.util.find_library("c")
    if not name:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name).malloc_trim(0)


class Gate:
    def __init__(self, limits: dict[str, int] | None = None, max_wait: float = DEFAULT_MAX_WAIT) -> None:
        self.limits = dict(DEFAULT_LIMITS, **(limits or {}))
        if not all(isinstance(n, int) and n >= 1 for n in self.limits.values()):
            raise ValueError(f"every limit must be a positive integer, got {self.limits}")
        self.max_wait = max_wait
        self._slots = {kind: threading.BoundedSemaphore(n) for kind, n in self.limits.items()}

    @contextlib.contextmanager
    def admit(self, kind: str) -> Iterator[None]:
        """Run the block when a ``kind`` slot is free; raise ``Busy`` after ``max_wait`` seconds."""
        slots = self._slots[kind]
        if not slots.acquire(timeout=self.max_wait):
            raise Busy(kind)
        try:
            yield
        finally:
            slots.release()
            if kind == "saliency":
                gc.collect()
                _malloc_trim()
