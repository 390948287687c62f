"""A bound on a whole block of blocking I/O (SPEC §5 "every wait is bounded").

Socket timeouts bound each read; a peer that trickles a byte now and then never trips them. A
:class:`Deadline` runs ``abort`` from a timer thread when its block is still running after
``seconds``; ``abort`` shuts the block's sockets down, so the blocked call fails at once, and
``expired`` tells the caller to report a timeout rather than a dropped connection. Used for the
whole connect to Monitor's file server (``transport/base.py``) and for one whole App4Sales call
(``app4sales/deadline.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Deadline:
    """``with Deadline(seconds, abort) as d: …`` calls ``abort()`` (from a timer thread) if the block is
    still running after ``seconds``; ``d.expired`` then says so, even when the block finished meanwhile."""

    def __init__(self, seconds: float, abort: Callable[[], None]):
        self.seconds, self._abort = seconds, abort
        self.expired = False
        self._finished = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def _expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.expired = True
        try:
            self._abort()
        except Exception:  # noqa: BLE001 - best effort: the connect fails as timed out either way
            pass

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._timer.cancel()
        with self._lock:
            self._finished = True
