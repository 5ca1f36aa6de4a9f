"""One gate for every model call of the server: a concurrency limit per kind of work, a memory
capacity shared by all kinds, and a bounded wait, beyond which the caller is told the server is
busy instead of piling up work.

Each call is charged what it may hold, known before it runs (``Translator.request_cost``: the
sum over its sentences of ``decode_bytes``, which grows with sentences x decoder rows x steps),
so sixteen large sampling requests wait for each other's memory while one-sentence translations,
which need little, still get in. A call that may need more than the whole capacity never would:
it is refused at once (``Busy`` says so; the service refuses one over its per-request budget
before it reaches the gate, with a message naming the limit).

Kinds: ``decode`` (translate, re-decode, steer, score, compare: short, and batched together),
``saliency`` (gradients: seconds of both cores and hundreds of MB each) and ``upload`` (reading
a training upload). Every entry point (the page's events, its server functions, the named API
endpoints) goes through ``Gate.admit``, so twenty saliency requests sent at once run one or two at
a time while a translation still gets in. After a saliency call or a large one the allocator is
asked to give freed memory back to the system (``malloc_trim``), so resident memory returns after
a burst.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
import threading
from typing import Any, Iterator

DEFAULT_LIMITS = {"decode": 32, "saliency": 1, "upload": 1}
DEFAULT_MAX_WAIT = 20.0  # seconds a call may wait for its turn before it is told to come back
DEFAULT_MEMORY_CAPACITY = 1536 * 2**20  # bytes all admitted calls may hold together (3 per-request budgets)
TRIM_AFTER_BYTES = 64 * 2**20  # a call that may have held this much gives freed memory back after it
RETRY_AFTER = 5  # seconds, said to a caller that was turned away


class Busy(RuntimeError):
    """The server is at its limit for this kind of work; ``retry_after`` seconds is a fair wait."""

    def __init__(self, kind: str, retry_after: int = RETRY_AFTER, message: str | None = None) -> None:
        super().__init__(message or f"The server is busy with other {kind} requests: try again in a few seconds.")
        self.kind, self.retry_after = kind, retry_after


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    """glibc, found once (``find_library`` runs a subprocess); None elsewhere."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def malloc_trim() -> None:
    """Give freed heap memory back to the system (glibc); nothing elsewhere."""
    with contextlib.suppress(AttributeError):
        if _libc() is not None:
            _libc().malloc_trim(0)


def limit_malloc_arenas(count: int = 2) -> None:
    """Let glibc's allocator keep at most ``count`` arenas (``mallopt(M_ARENA_MAX)``), for a server
    whose many threads would each get one: memory freed in one arena cannot serve another, and a
    burst of requests left hundreds of MB resident in them. Call it before the threads start;
    nothing elsewhere than glibc."""
    with contextlib.suppress(AttributeError):
        if _libc() is not None:
            _libc().mallopt(-8, count)  # M_ARENA_MAX


class Gate:
    def __init__(self, limits: dict[str, int] | None = None, max_wait: float = DEFAULT_MAX_WAIT,
                 memory_capacity: int = DEFAULT_MEMORY_CAPACITY) -> None:
        self.limits = dict(DEFAULT_LIMITS, **(limits or {}))
        if not all(isinstance(n, int) and n >= 1 for n in self.limits.values()):
            raise ValueError(f"every limit must be a positive integer, got {self.limits}")
        if not isinstance(memory_capacity, int) or memory_capacity < 1:
            raise ValueError(f"memory_capacity must be a positive number of bytes, got {memory_capacity!r}")
        self.max_wait, self.memory_capacity = max_wait, memory_capacity
        self._running = {kind: 0 for kind in self.limits}
        self._held = 0  # bytes charged to the calls admitted now
        self._changed = threading.Condition()

    @property
    def held(self) -> int:
        """Bytes charged to the calls running now."""
        with self._changed:
            return self._held

    @contextlib.contextmanager
    def admit(self, kind: str, memory: int = 0) -> Iterator[None]:
        """Run the block when a ``kind`` slot is free and ``memory`` bytes fit the capacity beside
        what the running calls hold; raise ``Busy`` after ``max_wait`` seconds (at once when
        ``memory`` is over the whole capacity)."""
        if memory > self.memory_capacity:
            raise Busy(kind, message=f"This request may hold {memory / 2**20:,.0f} MB, more than this server gives "
                                     f"all requests together ({self.memory_capacity / 2**20:,.0f} MB): make it smaller.")

        def fits() -> bool:
            return self._running[kind] < self.limits[kind] and self._held + memory <= self.memory_capacity

        with self._changed:
            if not self._changed.wait_for(fits, timeout=self.max_wait):
                raise Busy(kind)
            self._running[kind] += 1
            self._held += memory
        try:
            yield
        finally:
            with self._changed:
                self._running[kind] -= 1
                self._held -= memory
                self._changed.notify_all()
            if kind == "saliency":  # autograd leaves reference cycles: collect them first
                gc.collect()
            if kind == "saliency" or memory >= TRIM_AFTER_BYTES:
                malloc_trim()  # a foreign call: other threads run meanwhile
