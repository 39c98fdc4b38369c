"""A bound on bytes that threads of one process hold at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ByteBudget:
    """At most `limit_bytes` held at once by the threads sharing it. A holder waits until its
    bytes fit beside the others'; one wanting more than the whole budget waits until it is
    alone, so no work is ever refused, only delayed."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self.held_bytes = 0
        self.peak_bytes = 0  # the most held at once (what tests and benchmarks look at)
        self._changed = threading.Condition()

    @contextmanager
    def held(self, wanted_bytes: int) -> Iterator[None]:
        """Hold `wanted_bytes` (at most the whole budget) for the context."""
        wanted = min(wanted_bytes, self.limit_bytes)
        with self._changed:
            self._changed.wait_for(lambda: self.held_bytes + wanted <= self.limit_bytes)
            self.held_bytes += wanted
            self.peak_bytes = max(self.peak_bytes, self.held_bytes)
        try:
            yield
        finally:
            with self._changed:
                self.held_bytes -= wanted
                self._changed.notify_all()
