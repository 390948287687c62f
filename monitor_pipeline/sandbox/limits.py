"""A remote App4Sales, played on loopback: a latency on every API call and a cap on calls in flight.

:class:`LimitsMiddleware` (pure ASGI, outermost) applies to the API calls of every administration, never to
the sandbox-only extras (``…/api/app4sales/sandbox/…``) or the page:

- ``latency_ms``: each call waits that long before it is processed (a WAN round trip plus the server's
  own queueing); the wait counts as in flight.
- ``max_in_flight``: a call arriving while that many are in flight (server-wide) is answered ``429`` with
  ``Retry-After: retry_after`` at once and is not processed — what a hosted service with a concurrency cap
  does.

:class:`CallLimits` counts ``calls`` admitted, ``throttled`` (429s answered) and ``max_in_flight_seen``;
``GET sandbox/stats`` shows them, ``DELETE sandbox/stats`` resets them.
"""

from __future__ import annotations

import asyncio
import threading

from monitor_pipeline.sandbox.faults import api_call, send_json


class CallLimits:
    def __init__(self, latency_ms: float = 0.0, max_in_flight: int | None = None, retry_after: float = 1.0):
        if latency_ms < 0:
            raise ValueError("latency_ms must be ≥ 0")
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if retry_after < 0:
            raise ValueError("retry_after must be ≥ 0")
        self.latency_ms, self.max_in_flight, self.retry_after = latency_ms, max_in_flight, retry_after
        self._lock = threading.Lock()
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.calls = self.throttled = self.max_in_flight_seen = 0

    def admit(self) -> bool:
        with self._lock:
            if self.max_in_flight is not None and self.in_flight >= self.max_in_flight:
                self.throttled += 1
                return False
            self.in_flight += 1
            self.calls += 1
            self.max_in_flight_seen = max(self.max_in_flight_seen, self.in_flight)
            return True

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def snapshot(self) -> dict:
        with self._lock:
            return {"calls": self.calls, "throttled": self.throttled, "max_in_flight_seen": self.max_in_flight_seen,
                    "in_flight": self.in_flight, "latency_ms": self.latency_ms, "max_in_flight": self.max_in_flight}


class LimitsMiddleware:
    def __init__(self, app, limits: CallLimits):
        self.app, self.limits = app, limits

    async def __call__(self, scope, receive, send):
        if api_call(scope) is None:
            return await self.app(scope, receive, send)
        if not self.limits.admit():
            return await send_json(send, 429, {"error": f"sandbox: more than {self.limits.max_in_flight} calls in flight"},
                                   retry_after=self.limits.retry_after)
        try:
            if self.limits.latency_ms:
                await asyncio.sleep(self.limits.latency_ms / 1000)
            await self.app(scope, receive, send)
        finally:
            self.limits.leave()
