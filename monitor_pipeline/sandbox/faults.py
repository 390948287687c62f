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

A counterpart that lies or stalls *after* doing the work (SPEC §5 "confirmed means named in the
answer", "every wait is bounded") — each of these processes the request first (it commits), then:

- ``results``: answers ``200`` with the ``results`` list rewritten: ``"half"`` keeps the first half of
  the entries, ``"none"`` none, ``"foreign"`` names other codes (``X-<code>``), ``"unknown_status"``
  gives every entry the status ``"queued"``.
- ``body``: answers ``200`` with this JSON body instead (e.g. ``[]``).
- ``late``: waits that many seconds before answering (stored, then answered late).
- ``trickle``: sends the answer at that many bytes per second (headers at once, then the body).

And one that refuses: ``invalid`` (a list of CustomerCodes) answers a customer batch holding any of
them with the contract's ``400 {"error", "invalid": [{"CustomerCode", "message"}]}``, storing nothing.

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
RESULT_REWRITES = ("half", "none", "foreign", "unknown_status")
_UNSET = object()


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
    results: str | None = None
    body: object = _UNSET
    late: float | None = None
    trickle: float | None = None
    invalid: list | None = None

    @property
    def rewrites(self) -> bool:
        """Processes the request, then answers in its own way."""
        return self.results is not None or self.body is not _UNSET or bool(self.late) or bool(self.trickle)

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
        if fault.results is not None and fault.results not in RESULT_REWRITES:
            raise ValueError(f"results must be one of {RESULT_REWRITES}")
        if fault.trickle is not None and not (isinstance(fault.trickle, (int, float)) and fault.trickle > 0):
            raise ValueError("trickle must be a positive number of bytes per second")
        if fault.invalid is not None and not (isinstance(fault.invalid, list)
                                              and all(isinstance(c, str) for c in fault.invalid)):
            raise ValueError("invalid must be a list of CustomerCodes")
        if fault.status is None and fault.action is None and fault.delay is None and not fault.rewrites \
                and fault.invalid is None:
            raise ValueError("a fault needs a status, an action, a delay, a rewrite or invalid codes")
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


def api_call(scope) -> tuple[str, str] | None:
    """``(administration, path under the API base)`` of a contract call; None for anything else (the
    sandbox-only extras under ``sandbox/``, the page, lifespan events)."""
    match = API_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
    if not match or match.group(2).startswith("sandbox/"):
        return None
    return match.group(1), match.group(2)


class FaultMiddleware:
    """Pure ASGI middleware applying registered faults to API calls (never to ``sandbox/…``)."""

    def __init__(self, app, registry: FaultRegistry):
        self.app, self.registry = app, registry

    async def __call__(self, scope, receive, send):
        call = api_call(scope)
        if call is None:
            return await self.app(scope, receive, send)
        fault = self.registry.take(call[0], scope["method"], call[1])
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
        if fault.invalid is not None:
            return await _refuse_invalid(self.app, scope, receive, send, set(fault.invalid))
        if fault.rewrites:
            return await _rewrite(self.app, scope, receive, send, fault)
        if fault.status is not None:
            return await send_json(send, fault.status, {"error": f"sandbox fault: injected {fault.status}"},
                                   retry_after=fault.retry_after)
        return await self.app(scope, receive, send)


async def _buffered(receive) -> tuple[bytes, object]:
    """The whole request body, and a ``receive`` that replays it to the app."""
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}
    return body, replay


async def send_json(send, status: int, payload: object, *, retry_after: float | None = None,
                    trickle: float | None = None, receive=None) -> None:
    """Answer ``payload`` as JSON (with a ``Retry-After`` header when given; ``trickle``: bytes per second)."""
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", f"{retry_after:g}".encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if not trickle:
        await send({"type": "http.response.body", "body": body})
        return
    step = 1.0 / trickle
    cycle = getattr(receive, "__self__", None)  # uvicorn's request cycle: tells when the client has gone
    for i in range(len(body)):
        if getattr(cycle, "disconnected", False):
            return
        await send({"type": "http.response.body", "body": body[i:i + 1], "more_body": i + 1 < len(body)})
        await asyncio.sleep(step)


async def _refuse_invalid(app, scope, receive, send, codes: set[str]) -> None:
    raw, replay = await _buffered(receive)
    try:
        sent = [c.get("CustomerCode") for c in json.loads(raw).get("customers", []) if isinstance(c, dict)]
    except (ValueError, AttributeError):
        sent = []
    bad = [code for code in sent if code in codes]
    if not bad:
        return await app(scope, replay, send)
    await send_json(send, 400, {"error": "sandbox fault: invalid customers",
                                 "invalid": [{"CustomerCode": c, "message": "sandbox fault: refused"} for c in bad]})


async def _rewrite(app, scope, receive, send, fault: Fault) -> None:
    """Let the app process the request (it commits), then answer as the fault says."""
    status, payload, done = 500, None, bytearray()

    async def capture(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            done.extend(message.get("body", b""))

    await app(scope, receive, capture)
    try:
        payload = json.loads(bytes(done)) if done else None
    except ValueError:
        payload = None
    if fault.late:
        await asyncio.sleep(fault.late)
    if 200 <= status < 300 and fault.body is not _UNSET:
        status, payload = 200, fault.body
    elif 200 <= status < 300 and fault.results is not None and isinstance(payload, dict):
        results = list(payload.get("results") or [])
        if fault.results == "half":
            results = results[: len(results) // 2]
        elif fault.results == "none":
            results = []
        elif fault.results == "foreign":
            results = [{**r, "CustomerCode": f"X-{r.get('CustomerCode')}"} for r in results]
        else:
            results = [{**r, "status": "queued"} for r in results]
        payload = {**payload, "results": results}
    if status == 204 or payload is None and not done:
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await send_json(send, status, payload, trickle=fault.trickle, receive=receive)
