"""Fault injection for tests: error answers, delays and dropped connections.

A fault is registered per administration with ``POST sandbox/faults`` and matches requests by
path (relative to the API base, ``fnmatch`` patterns allowed, e.g. ``customers/*/dashboard``)
and method (omitted: any). It fires ``times`` times (default 1), then disappears. Fields:

- ``status`` (+ optional ``retry_after``): answer that status without processing the request.
- ``action: "drop_before"``: close the connection without answering and without processing.
- ``action: "drop_after"``: process the request (its transaction commits), then close the
  connection without answering.
- ``delay``: sleep that many seconds first (combinable; alone, the request is then processed).
- ``skip``: let that many matching requests through untouched before the fault starts firing
  (e.g. ``skip: 1`` fails the second batch of a sync, after the first one was stored).

Dropping a connection: uvicorn hands the ASGI app ``receive`` as a bound method of its
per-request cycle object, which holds the asyncio transport; ``transport.abort()`` closes the
socket at once, so the client sees the connection end with no status line at all (requests
raises ``ConnectionError``). If the transport cannot be found (another ASGI server), the
fallback sends response headers announcing a body and then raises, which makes the server close
the connection mid-response (requests raises ``ChunkedEncodingError``). Never a 500.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import re
import threading
from dataclasses import dataclass

API_PATH = re.compile(r"^/([^/]+)/api/app4sales/(.*)$")
ACTIONS = ("drop_before", "drop_after")


@dataclass
class Fault:
    path: str
    method: str | None = None
    times: int = 1
    status: int | None = None
    retry_after: float | None = None
    action: str | None = None
    delay: float | None = None
    skip: int = 0

    @classmethod
    def from_json(cls, body: object) -> Fault:
        if not isinstance(body, dict) or not isinstance(body.get("path"), str):
            raise ValueError("a fault needs at least a string 'path'")
        unknown = set(body) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        fault = cls(**body)
        if fault.action is not None and fault.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}")
        if fault.status is None and fault.action is None and fault.delay is None:
            raise ValueError("a fault needs a status, an action or a delay")
        if not isinstance(fault.times, int) or fault.times < 1:
            raise ValueError("times must be a positive whole number")
        if not isinstance(fault.skip, int) or fault.skip < 0:
            raise ValueError("skip must be a whole number ≥ 0")
        fault.path = fault.path.lstrip("/")
        fault.method = fault.method.upper() if fault.method else None
        return fault


class FaultRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, list[Fault]] = {}

    def add(self, admin: str, fault: Fault) -> None:
        with self._lock:
            self._faults.setdefault(admin, []).append(fault)

    def clear(self, admin: str) -> None:
        with self._lock:
            self._faults.pop(admin, None)

    def take(self, admin: str, method: str, path: str) -> Fault | None:
        """The first matching fault, counting one firing of it."""
        with self._lock:
            for fault in self._faults.get(admin, []):
                if (fault.method in (None, method)) and fnmatch.fnmatchcase(path, fault.path):
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults[admin].remove(fault)
                    return fault
        return None


async def drop_connection(receive, send) -> None:
    """Close the client connection without an HTTP answer (see module docstring)."""
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is not None and hasattr(transport, "abort"):
        transport.abort()
        for _ in range(100):  # let the server notice, so it does not complain about a missing response
            if getattr(cycle, "disconnected", True):
                break
            await asyncio.sleep(0.001)
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")]})
    raise ConnectionAbortedError("sandbox fault: connection dropped mid-response")


class FaultMiddleware:
    """Pure ASGI middleware applying registered faults to API calls (never to ``sandbox/…``)."""

    def __init__(self, app, registry: FaultRegistry):
        self.app, self.registry = app, registry

    async def __call__(self, scope, receive, send):
        match = API_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if not match or match.group(2).startswith("sandbox/"):
            return await self.app(scope, receive, send)
        fault = self.registry.take(match.group(1), scope["method"], match.group(2))
        if fault is None:
            return await self.app(scope, receive, send)
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.action == "drop_before":
            return await drop_connection(receive, send)
        if fault.action == "drop_after":
            async def swallow(message):
                pass
            await self.app(scope, receive, swallow)
            return await drop_connection(receive, send)
        if fault.status is not None:
            body = json.dumps({"error": f"sandbox fault: injected {fault.status}"}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            if fault.retry_after is not None:
                headers.append((b"retry-after", f"{fault.retry_after:g}".encode()))
            await send({"type": "http.response.start", "status": fault.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        return await self.app(scope, receive, send)
