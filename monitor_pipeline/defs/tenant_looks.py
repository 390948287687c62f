"""One sensor tick over many tenants: every tenant looked at concurrently, each under a deadline, with backoff.

Dagster gives a sensor tick 60 s (``DAGSTER_SENSOR_GRPC_TIMEOUT_SECONDS``); past that the tick fails, for
every tenant. So a sensor never waits on one tenant's server for long:

- each due tenant is looked at on a thread of its own, all at once; the tick waits at most
  ``MONITOR_SENSOR_TENANT_SECONDS`` (plus a second) for them. A look makes ONE attempt, with its connect
  and read timeouts capped by that deadline (the next tick is the retry); a tenant still not done by
  then is named in the tick ("no answer within 20 s") and its cursor state is kept as it was;
- the tick never joins a thread that is still stuck (the threads are daemon threads), and a tenant
  whose previous look is still running is not looked at again ("still waiting for the previous look"):
  at most one look per tenant is ever outstanding;
- a tenant that fails tick after tick is looked at less often: after ``n`` failures in a row the next
  look is ``interval × 2**(n-1)`` later, at most ten minutes (but at least one interval). The count and
  the time of the next look are kept per tenant in the cursor (``"_backoff"``, a key no tenant name can
  be) and shown in the skip reason ("north: unreachable 3 times, next look in 4 min"); a success clears
  them;
- a permanent error (a rejected login, a missing setting) of one tenant is logged at error level and
  named in the reason, and the other tenants go on; it backs off like any failure (a wrong password is
  not retried every tick). Without tenants (``raise_permanent``) it fails the tick, loudly, as before.

Run requests and skip reasons cannot go together in a ``SensorResult``: when some tenants request runs,
the others' reasons are written to the tick's log instead (warnings; permanent errors as errors).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import dagster as dg

from monitor_pipeline.deployment import DeploymentSettings

BACKOFF_KEY = "_backoff"  # tenant names start with a letter or a digit (tenants.Tenant.name)
BACKOFF_CAP_SECONDS = 600.0
TENANT_SECONDS_VARIABLE = DeploymentSettings.variables()["sensor_tenant_seconds"]  # named in messages
SINGLE = "default"  # the backoff key of the one tenant of a deployment without tenants


class BufferedLog:
    """``context.log`` for a look's thread: the lines are kept and written by the tick's own thread once the
    look is done (a late look's lines are dropped with it)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def info(self, message: str) -> None:
        self.lines.append(("info", message))

    def warning(self, message: str) -> None:
        self.lines.append(("warning", message))

    def error(self, message: str) -> None:
        self.lines.append(("error", message))


@dataclass
class Outcome:
    """What one look at one tenant found: the runs to request, the tenant's new cursor state, why nothing
    was requested (``reason``), and ``failure`` when the look failed transiently without raising (the
    export sensor's feed: the tenant backs off). ``reason`` and ``failure`` name the tenant themselves."""

    requests: list[dg.RunRequest] = field(default_factory=list)
    state: Any = None
    reason: str = ""
    failure: str | None = None


@dataclass
class TickLooks:
    """The tick's findings: the run requests, the new state of every tenant whose look finished (the others
    keep theirs), the reasons in tenant order, the new backoff records, and the reasons that are errors."""

    requests: list[dg.RunRequest]
    states: dict[str | None, Any]
    reasons: list[str]
    backoff: dict[str, dict] | None
    errors: list[str]

    def sensor_result(self, context: dg.SensorEvaluationContext, cursor: str,
                      nothing: str = "", asset_events: list | None = None) -> dg.SensorResult:
        """The tick's ``SensorResult``: the requests, or else the reasons as its skip reason. Permanent
        errors are also logged at error level; beside requests, the other reasons as warnings.
        ``asset_events``: observations to record with the tick either way."""
        for reason in self.reasons:
            if reason in self.errors:
                context.log.error(reason)
            elif self.requests:
                context.log.warning(reason)
        if self.requests:
            return dg.SensorResult(run_requests=self.requests, cursor=cursor, asset_events=asset_events or [])
        return dg.SensorResult(skip_reason="; ".join(self.reasons) or nothing or None, cursor=cursor,
                               asset_events=asset_events or [])


@dataclass
class _Running:
    future: Future
    started: float  # time.monotonic()


def _in_thread(fn: Callable[[], Any], name: str) -> Future:
    """``fn()`` on a daemon thread of its own: a look stuck on a dead server never holds up the tick, nor
    the code server's exit."""
    future: Future = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the tick, which classifies it
            future.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


def backoff_seconds(failures: int, interval: float, cap: float = BACKOFF_CAP_SECONDS) -> float:
    """How long after its ``failures``-th failure in a row a tenant is looked at again: one interval after
    the first, then 2, 4, 8 … intervals, at most ``cap`` (and never less than one interval)."""
    return min(interval * 2 ** max(failures - 1, 0), max(cap, interval))


def in_words(seconds: float) -> str:
    """``45 s``, ``4 min``."""
    seconds = max(0.0, seconds)
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _times(n: int) -> str:
    return "1 time" if n == 1 else f"{n} times"


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


class TenantLooks:
    """The looks of one sensor, kept across its ticks (the sensor's code server evaluates every tick in
    one process): which tenant still has a look running. ``tenant_seconds``: the deadline of one look
    (``MONITOR_SENSOR_TENANT_SECONDS``); ``interval``: the sensor's minimum interval, the unit of the
    backoff; ``clock``: wall-clock seconds (the cursor's times outlive the process)."""

    GRACE_SECONDS = 1.0  # a look whose timeouts are capped by the deadline fails right at it: wait for that

    def __init__(self, sensor_name: str, tenant_seconds: float, interval: float,
                 clock: Callable[[], float] = time.time):
        if tenant_seconds <= 0:
            raise ValueError("tenant_seconds must be positive")
        self.sensor_name, self.tenant_seconds, self.interval = sensor_name, float(tenant_seconds), float(interval)
        self.clock = clock
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()

    def still_running(self) -> list[str]:
        """The tenants (backoff keys) whose last look has not ended yet."""
        with self._lock:
            return [key for key, running in self._running.items() if not running.future.done()]

    def tick(self, context: dg.SensorEvaluationContext, tenants: Iterable[str | None],
             look: Callable[[str | None, float, BufferedLog], Outcome], *, backoff: dict | None,
             is_transient: Callable[[BaseException], bool], raise_permanent: bool = False) -> TickLooks:
        """Look at every due tenant (``look(tenant, seconds, log)``, each on its own thread) and gather what
        they found within the deadline. ``backoff``: the cursor's records (None: no backoff kept)."""
        now, started = self.clock(), time.monotonic()
        order: list[str | None] = list(tenants)
        keys = {tenant or SINGLE for tenant in order}  # a tenant no longer served leaves no record behind
        found = backoff.items() if isinstance(backoff, dict) else ()  # a cursor edited by hand: start afresh
        records = None if backoff is None else {k: dict(v) for k, v in found if k in keys and isinstance(v, dict)}
        reasons: dict[str | None, str] = {}
        errors: list[str] = []
        looking: dict[str | None, _Running] = {}
        with self._lock:
            for tenant in order:
                key = tenant or SINGLE
                label = f"{tenant}: " if tenant else ""
                previous = self._running.get(key)
                if previous is not None and not previous.future.done():
                    reasons[tenant] = (f"{label}still waiting for the previous look (started "
                                       f"{in_words(started - previous.started)} ago), not looked at again until it "
                                       "ends")
                    continue
                self._running.pop(key, None)
                record = records.get(key) if records is not None else None
                if record and not self._due(record, now):
                    reasons[tenant] = self._backed_off(label, record, now)
                    continue
                running = _Running(_in_thread(self._call(look, tenant), f"{self.sensor_name}-{key}"), started)
                self._running[key] = running
                looking[tenant] = running
        if looking:
            wait([r.future for r in looking.values()], timeout=self.tenant_seconds + self.GRACE_SECONDS)

        requests: list[dg.RunRequest] = []
        states: dict[str | None, Any] = {}
        for tenant in order:
            if tenant not in looking:
                continue
            key, label, future = tenant or SINGLE, f"{tenant}: " if tenant else "", looking[tenant].future
            if not future.done():
                failure = (f"no answer within {self.tenant_seconds:g} s ({TENANT_SECONDS_VARIABLE}); its cursor "
                           "state is kept")
                reasons[tenant] = self._failed(records, key, label, failure, now, permanent=False)
                continue
            with self._lock:
                self._running.pop(key, None)
            exc = future.exception()
            if exc is not None:
                if not is_transient(exc) and raise_permanent:
                    raise exc
                permanent = not is_transient(exc)
                what = f"{type(exc).__name__}: {exc}" if permanent else f"not reachable ({exc})"
                reasons[tenant] = self._failed(records, key, label, what, now, permanent=permanent)
                if permanent:
                    errors.append(reasons[tenant])
                continue
            log, outcome = future.result()
            for level, message in log.lines:
                getattr(context.log, level)(message)
            requests += outcome.requests
            states[tenant] = outcome.state
            if outcome.failure:  # its text names the tenant already
                reasons[tenant] = self._failed(records, key, "", outcome.failure, now, permanent=False)
            else:
                if records is not None:
                    records.pop(key, None)
                if outcome.reason:
                    reasons[tenant] = outcome.reason
        return TickLooks(requests, states, [reasons[t] for t in order if reasons.get(t)], records, errors)

    def _call(self, look: Callable[[str | None, float, BufferedLog], Outcome],
              tenant: str | None) -> Callable[[], tuple[BufferedLog, Outcome]]:
        def call() -> tuple[BufferedLog, Outcome]:
            log = BufferedLog()
            return log, look(tenant, self.tenant_seconds, log)
        return call

    def _due(self, record: dict, now: float) -> bool:
        try:
            next_look = datetime.fromisoformat(record["next_look"]).timestamp()
        except (KeyError, TypeError, ValueError):
            return True  # a record we cannot read: look
        return now >= next_look - self.interval / 2  # ticks come a little early or late

    def _backed_off(self, label: str, record: dict, now: float) -> str:
        next_look = datetime.fromisoformat(record["next_look"]).timestamp()
        what = "failed" if record.get("permanent") else "unreachable"
        last = f" (last: {record['last']})" if record.get("last") else ""
        return (f"{label}{what} {_times(int(record.get('failures', 1)))}, next look in "
                f"{in_words(next_look - now)}{last}")

    def _failed(self, records: dict | None, key: str, label: str, failure: str, now: float, *,
                permanent: bool) -> str:
        if records is None:  # no backoff kept: the next tick looks again
            return f"{label}{failure}"
        failures = int(records.get(key, {}).get("failures", 0)) + 1
        wait_for = backoff_seconds(failures, self.interval)
        records[key] = {"failures": failures, "permanent": permanent, "last": _short(failure),
                        "next_look": datetime.fromtimestamp(now + wait_for, timezone.utc).isoformat(timespec="seconds")}
        what = "failed" if permanent else "unreachable"
        return f"{label}{failure} — {what} {_times(failures)} in a row, next look in {in_words(wait_for)}"
