"""A bound on a whole block of blocking I/O (SPEC §5 "every wait is bounded").

Socket timeouts bound each read; a peer that trickles a byte now and then never trips them. A
:class:`Deadline` runs ``abort`` (from the process's watchdog thread) when its block is still running after
``seconds``; ``abort`` shuts the block's sockets down, so the blocked call fails at once, and
``expired`` tells the caller to report a timeout rather than a dropped connection. Used for the
whole connect to Monitor's file server (``transport/base.py``) and for one whole App4Sales call
(``app4sales/deadline.py``).
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from collections.abc import Callable


class _Watchdog:
    """One thread per process that fires every :class:`Deadline` due (a timer thread per deadline cost a
    thread start, and its hand-over, on every App4Sales call). Each expired deadline's ``abort`` runs on a
    thread of its own, so an abort that blocks delays no other deadline."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, due: float, deadline: "Deadline") -> None:
        with self._cond:
            heapq.heappush(self._heap, (due, next(self._order), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, daemon=True, name="deadline-watchdog")
                self._thread.start()
            elif self._heap[0][2] is deadline:  # earlier than what the thread waits for
                self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][2].finished:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                due = self._heap[0][0]
                left = due - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                expired = heapq.heappop(self._heap)[2]
                threading.Thread(target=expired._expire, daemon=True, name="deadline-abort").start()


_watchdog = _Watchdog()


def _new_watchdog_after_fork() -> None:  # the parent's thread and lock do not exist in a forked child
    global _watchdog
    _watchdog = _Watchdog()


os.register_at_fork(after_in_child=_new_watchdog_after_fork)


class Deadline:
    """``with Deadline(seconds, abort) as d: …`` calls ``abort()`` (from another thread) if the block is
    still running after ``seconds``; ``d.expired`` then says so, even when the block finished meanwhile."""

    def __init__(self, seconds: float, abort: Callable[[], None]):
        self.seconds, self._abort = seconds, abort
        self.expired = False
        self.finished = False
        self._lock = threading.Lock()

    def _expire(self) -> None:
        with self._lock:
            if self.finished:
                return
            self.expired = True
        try:
            self._abort()
        except Exception:  # noqa: BLE001 - best effort: the connect fails as timed out either way
            pass

    def __enter__(self) -> Deadline:
        _watchdog.add(time.monotonic() + self.seconds, self)
        return self

    def __exit__(self, *exc_info) -> None:
        with self._lock:
            self.finished = True
            self._abort = _nothing  # the watchdog may hold this object until its time: not its connections


def _nothing() -> None:
    pass
