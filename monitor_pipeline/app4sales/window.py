"""How many App4Sales calls one client has in flight: an adaptive window (SPEC §5 "every wait is bounded";
a hosted App4Sales that caps concurrency answers 429 or 503 beyond its cap).

:class:`AdaptiveWindow` admits at most ``limit`` calls at a time, ``limit`` starting at ``maximum``
(``MONITOR_UPSERT_CONCURRENCY``). It adapts as TCP does (additive increase, multiplicative decrease):

- A 429 or 503 answer halves ``limit`` (rounding up, never below 1), once per congestion event: the
  throttled answers of calls that started before the last shrink do not shrink it again. A ``Retry-After`` holds back every
  new call until it has passed, not only the retry of the throttled one.
- ``GROW_ROUNDS × limit`` answers in a row that were not throttled grow ``limit`` by one, up to
  ``maximum``; growing back to the size that was throttled last takes ``PROBE_ROUNDS × limit``.

So a server that caps concurrency below the setting sees at most a few 429s before the window fits
under its cap, then one now and then as the window probes upwards. The throttled call itself is retried
by the client (it was not processed: nothing is sent twice). Every change is reported to ``on_change(message, shrank)``
(the run log); the counters say how the run went.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

THROTTLE_STATUSES = (429, 503)
GROW_ROUNDS = 4     # a window's worth of answers, this many times over, to grow by one
PROBE_ROUNDS = 32   # ... to grow back to the size that was throttled last


class AdaptiveWindow:
    """At most ``limit`` calls in flight; see the module docstring. Thread-safe."""

    def __init__(self, maximum: int, on_change: Callable[[str, bool], None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        if maximum < 1:
            raise ValueError("maximum must be at least 1")
        self.maximum = self.limit = self.lowest = maximum
        self.throttled = 0      # 429/503 answers seen
        self.shrinks = 0        # times the window shrank
        self._on_change, self._clock = on_change, clock
        self._cond = threading.Condition()
        self._in_flight = 0
        self._successes = 0     # answers in a row not throttled, since the last change
        self._epoch = 0         # shrinks so far: a call throttled in an older epoch was already accounted for
        self._resume_at = 0.0   # no new call before this (Retry-After)
        self._ceiling = maximum + 1  # the window that was throttled last: probed again only slowly

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextmanager
    def slot(self) -> Iterator[int]:
        """Hold one place in the window for one call (waits while the window is full or a Retry-After runs;
        each of those ends: calls in flight are bounded by the client's timeouts). Yields the epoch to
        pass to :meth:`answered`."""
        with self._cond:
            while True:
                hold = self._resume_at - self._clock()
                if hold <= 0 and self._in_flight < self.limit:
                    break
                self._cond.wait(timeout=hold if hold > 0 else 1.0)
            self._in_flight += 1
            epoch = self._epoch
        try:
            yield epoch
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def answered(self, epoch: int, status: int | None, retry_after: float | None = None) -> None:
        """Account for one answer (``status`` None: no answer, e.g. a timeout, which changes nothing)."""
        message, shrank = None, False
        with self._cond:
            if status in THROTTLE_STATUSES:
                self.throttled += 1
                if retry_after:
                    self._resume_at = max(self._resume_at, self._clock() + retry_after)
                if epoch == self._epoch and self.limit > 1:
                    old, self.limit = self.limit, self.limit - self.limit // 2
                    self._ceiling = old
                    self.lowest = min(self.lowest, self.limit)
                    self._epoch += 1
                    self.shrinks += 1
                    self._successes = 0
                    shrank = True
                    message = (f"App4Sales answered HTTP {status}: calls in flight {old} → {self.limit}"
                               + (f" (Retry-After {retry_after:g} s)" if retry_after else ""))
                elif epoch == self._epoch:
                    self._epoch += 1  # at 1 already: the retry waits its turn
                    self._successes = 0
            elif status is not None and self.limit < self.maximum:
                self._successes += 1
                if self._successes >= self.limit * (GROW_ROUNDS if self.limit + 1 < self._ceiling else PROBE_ROUNDS):
                    old, self.limit, self._successes = self.limit, self.limit + 1, 0
                    message = f"App4Sales keeps up: calls in flight {old} → {self.limit}"
                    self._cond.notify_all()
        if message and self._on_change is not None:
            self._on_change(message, shrank)
