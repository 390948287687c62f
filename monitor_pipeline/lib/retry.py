"""Retry with exponential backoff, honouring a server's ``Retry-After``."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class RetryPolicy:
    """``attempts`` tries in all; waits ``base * 2**n`` (capped at ``cap``) with jitter between them."""

    def __init__(self, attempts: int = 4, base: float = 0.5, cap: float = 30.0, jitter: float = 0.1,
                 sleep: Callable[[float], None] = time.sleep):
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.attempts, self.base, self.cap, self.jitter, self.sleep = attempts, base, cap, jitter, sleep

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0-based)."""
        wait = min(self.cap, self.base * (2 ** attempt))
        wait += wait * self.jitter * random.random()
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.cap))
        return wait

    def call(self, fn: Callable[[], T], *, is_transient: Callable[[BaseException], bool],
             retry_after: Callable[[BaseException], float | None] = lambda exc: None,
             on_retry: Callable[[int, BaseException, float], None] | None = None) -> T:
        """Run ``fn``; retry it while it raises a transient error, re-raise the last one."""
        for attempt in range(self.attempts):
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - classified just below
                if not is_transient(exc) or attempt == self.attempts - 1:
                    raise
                wait = self.delay(attempt, retry_after(exc))
                if on_retry is not None:
                    on_retry(attempt + 1, exc, wait)
                self.sleep(wait)
        raise AssertionError("unreachable")
