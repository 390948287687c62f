"""A logger that worker threads may use while only one thread writes the run log.

Dagster's run log is written through ``context.log``, which has dropped or mixed up records written from
other threads (dagster-io/dagster#7442). :class:`LogRelay` writes at once on the thread that made it and
queues the lines of every other thread until that thread calls :meth:`flush` (or logs a line itself).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any


class LogRelay:
    """``debug``/``info``/``warning``/``error`` like a ``logging.Logger``, safe from any thread."""

    def __init__(self, target: logging.Logger | logging.LoggerAdapter | Any):
        self.target = target
        self._owner = threading.get_ident()
        self._queue: deque[tuple[str, str, tuple]] = deque()

    def _log(self, level: str, message: str, *args: Any) -> None:
        if threading.get_ident() != self._owner:
            self._queue.append((level, message, args))
            return
        self.flush()
        getattr(self.target, level)(message, *args)

    def debug(self, message: str, *args: Any) -> None:
        self._log("debug", message, *args)

    def info(self, message: str, *args: Any) -> None:
        self._log("info", message, *args)

    def warning(self, message: str, *args: Any) -> None:
        self._log("warning", message, *args)

    def error(self, message: str, *args: Any) -> None:
        self._log("error", message, *args)

    def flush(self) -> None:
        """Write the other threads' queued lines (on the owner thread only; elsewhere it does nothing)."""
        if threading.get_ident() != self._owner:
            return
        while self._queue:
            level, message, args = self._queue.popleft()
            getattr(self.target, level)(message, *args)
