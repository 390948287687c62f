"""Bounded transfers and connects (SPEC §2).

Two limits keep a file transfer from running for hours against a server that trickles:

* ``MONITOR_FTP_READ_TIMEOUT`` bounds every pause: a socket read or write (or a local file call)
  that does not move a byte for that long fails;
* ``MONITOR_FTP_MIN_RATE`` over ``MONITOR_FTP_RATE_WINDOW`` bounds the pace: once a transfer has
  run for a window, the bytes it moved in the last window, averaged, must reach the minimum (as
  curl's ``--speed-limit``/``--speed-time``). A transfer that finishes within one window is never
  too slow.

``Pace`` is told of every step of a transfer (``advance``); when the average falls below the
minimum it raises ``SlowTransferError`` (transient: the retry policy reconnects and tries again)
and calls ``on_stall`` so that nothing waits on the connection afterwards. Since every step of a
transfer is itself bounded by the read timeout, a trickling transfer fails at the latest one read
timeout after the window in which it fell below the minimum.

``Deadline`` (``lib/deadline.py``) bounds a whole connect (TCP, TLS or SSH handshake, login, SFTP
subsystem) by ``MONITOR_FTP_CONNECT_TIMEOUT``: when it expires it calls ``abort`` from its timer
thread, which shuts the sockets down so that whatever step is blocked fails at once.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from monitor_pipeline.lib.deadline import Deadline
from monitor_pipeline.transport.errors import SlowTransferError

__all__ = ["Deadline", "Pace"]


class Pace:
    """The minimum average rate of one transfer. ``what`` names it in the error
    (``"download of 'customers.xml' on sftp://…"``); ``min_rate`` 0 switches the check off."""

    def __init__(self, min_rate: float, window: float, *, what: str = "transfer",
                 on_stall: Callable[[], None] | None = None, clock: Callable[[], float] = time.monotonic):
        self.min_rate, self.window, self.what = float(min_rate), float(window), what
        self.on_stall = on_stall
        self.error: SlowTransferError | None = None
        self.total = 0
        self._clock = clock
        self._resolution = self.window / 64
        self.begin()

    @classmethod
    def unlimited(cls) -> Pace:
        return cls(0, 1)

    def begin(self) -> None:
        """The transfer starts now (the commands before it do not count)."""
        now = self._clock()
        self.total = 0
        self._samples: deque[tuple[float, int]] = deque([(now, 0)])

    def advance(self, n: int) -> None:
        """``n`` more bytes moved; raise ``SlowTransferError`` when the pace is below the minimum."""
        self.total += n
        self.check()

    def check(self) -> None:
        """Raise ``SlowTransferError`` when the bytes moved in the last window are below the minimum."""
        if self.error is not None:
            raise self.error
        if self.min_rate <= 0:
            return
        now = self._clock()
        samples, cutoff = self._samples, now - self.window
        while len(samples) >= 2 and samples[1][0] <= cutoff:
            samples.popleft()
        since, moved_before = samples[0]
        if since <= cutoff:  # a full window has passed; `since` is the newest sample at or before its start
            moved, elapsed = self.total - moved_before, now - since
            if moved < self.min_rate * elapsed:
                self._stall(moved, elapsed)
        if now - samples[-1][0] >= self._resolution:
            samples.append((now, self.total))

    def _stall(self, moved: int, elapsed: float) -> None:
        self.error = SlowTransferError(
            f"{self.what} is too slow: {moved} bytes in the last {elapsed:.1f} s ({moved / elapsed:.0f} B/s), "
            f"below the minimum MONITOR_FTP_MIN_RATE={self.min_rate:g} B/s averaged over "
            f"MONITOR_FTP_RATE_WINDOW={self.window:g} s; the server or the network is stalling")
        if self.on_stall is not None:
            try:
                self.on_stall()
            except Exception:  # noqa: BLE001 - dropping the connection is best effort; the error matters
                pass
        raise self.error
