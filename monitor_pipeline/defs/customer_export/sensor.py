"""``new_customer_sensor``: polls the App4Sales new-customer feed, one export run per customer (SPEC §6).

Cursor: the last ``Sequence`` seen (start ``0``). Each tick pages through
``GET newcustomers?after=<cursor>&take=100`` until a short page, at most ``max_items_per_tick``
items, and requests one ``export_new_customer_job`` run per item with ``run_key = CustomerGuid``,
so no customer is exported twice by the sensor. The feed item goes into the run config.

- Transient App4Sales failure (retries exhausted, connection error): ``SkipReason``, cursor
  unchanged (if earlier pages of the same tick succeeded, their runs are requested and the
  cursor advances only past them).
- Authentication failure: the tick raises, so it fails loudly in the UI (with tenants: that tenant's
  failure is named and logged as an error, and the others go on).

Each look at the feed makes one attempt, within ``MONITOR_SENSOR_TENANT_SECONDS`` (``tenant_looks``):
the tenants are looked at all at once, and a tenant whose App4Sales does not answer in time is named
in the tick, keeps its Sequence and is looked at less often while it keeps failing (with tenants).

Environment: ``MONITOR_CREATE_CUSTOMER`` (default true → the sensor runs by default; false →
stopped by default) and ``MONITOR_EXPORT_POLL_SECONDS`` (default 30) → minimum interval.
"""

# No ``from __future__ import annotations``: Dagster reads the resource annotation at decoration time.
import json
import time
from collections.abc import Callable, Mapping

import dagster as dg
import requests

from monitor_pipeline.app4sales.errors import App4SalesAuthError, App4SalesTransientError
from monitor_pipeline.defs.run_tags import host_tags
from monitor_pipeline.defs.customer_export.feed_backlog import backlog_observations
from monitor_pipeline.defs.customer_export.job import EXPORT_JOB_NAME, run_config_for
from monitor_pipeline.defs.tenant_looks import BACKOFF_KEY, Outcome, TenantLooks
from monitor_pipeline.deployment import DeploymentSettings
from monitor_pipeline.export.settings import ExportSettings
from monitor_pipeline.resources.app4sales import App4SalesApi
from monitor_pipeline.resources.tenancy import MonitorTenancy
from monitor_pipeline.tenants import Tenant

SENSOR_NAME = "new_customer_sensor"
PAGE_SIZE = 100
MAX_ITEMS_PER_TICK = 1000
TENANT_SECONDS = DeploymentSettings.model_fields["sensor_tenant_seconds"].default

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    App4SalesTransientError, requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)


def parse_cursor(cursor: str | None) -> int:
    if cursor is None or cursor.strip() == "":
        return 0
    try:
        value = int(cursor)
    except ValueError:
        raise ValueError(f"{SENSOR_NAME} cursor {cursor!r} is not a feed Sequence number; reset it in the UI "
                         "(sensor → Set cursor value) to the last exported Sequence, or 0") from None
    if value < 0:
        raise ValueError(f"{SENSOR_NAME} cursor {value} is negative")
    return value


def poll_feed(log, app4sales: App4SalesApi, start: int, *, tenant: str | None = None,
              page_size: int = PAGE_SIZE, max_items: int = MAX_ITEMS_PER_TICK,
              tags: Mapping[str, str] | None = None,
              seconds: float | None = None) -> tuple[list[dg.RunRequest], int, str | None]:
    """Read the feed after ``start``: (run requests, last Sequence read, reason when the feed failed).
    ``log``: where warnings go (``context.log``); ``seconds``: no page is asked for after that long, and
    none may take longer than what is left (a sensor's look)."""
    last = start
    run_requests: list[dg.RunRequest] = []
    seen = 0
    prefix = f"{tenant}: " if tenant else ""
    ends = None if seconds is None else time.monotonic() + seconds
    try:
        with app4sales.client() as client:
            while seen < max_items:
                if ends is not None:
                    left = ends - time.monotonic()
                    if left <= 0:
                        log.info(f"{prefix}{seen} customers read; the rest of the feed next tick (deadline)")
                        break
                    cap = max(round(left, 1), 0.1)  # what is left of the look for this page
                    if cap < (client.answer_timeout or cap + 1):
                        client.answer_timeout = cap
                        client.timeout = tuple(min(t, cap) for t in client.timeout)
                take = min(page_size, max_items - seen)
                page = client.new_customers(after=last, take=take)
                for item in page:
                    sequence = int(item["Sequence"])
                    if sequence <= last:  # the feed is strictly increasing; never go back
                        log.warning(f"{prefix}feed item with Sequence {sequence} ≤ cursor {last} ignored")
                        continue
                    last = sequence
                    seen += 1
                    guid = item.get("CustomerGuid")
                    if not guid:
                        log.error(f"{prefix}feed item Sequence {sequence} has no CustomerGuid; skipped")
                        continue
                    run_requests.append(dg.RunRequest(
                        run_key=str(guid) if tenant is None else f"{tenant}:{guid}",
                        run_config=run_config_for(item),
                        partition_key=tenant,
                        tags={"customer_guid": str(guid), "sequence": str(sequence), "flow": "customer_export",
                              **(tags or {})},
                    ))
                if len(page) < take:
                    break
    except App4SalesAuthError:
        raise
    except TRANSIENT_ERRORS as exc:
        reason = f"{prefix}App4Sales new-customer feed unavailable ({type(exc).__name__}: {exc})"
        if last == start:
            return [], start, f"{reason}; cursor stays at {start}, retrying next tick"
        log.warning(f"{reason}; requesting the {len(run_requests)} customers read so far")
    return run_requests, last, None


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)


def build_new_customer_sensor(
    enabled_by_default: bool = True,
    poll_seconds: int = 30,
    *,
    name: str = SENSOR_NAME,
    page_size: int = PAGE_SIZE,
    max_items_per_tick: int = MAX_ITEMS_PER_TICK,
    tenants: Mapping[str, Tenant] | None = None,
    tenant_seconds: float = TENANT_SECONDS,
    clock: Callable[[], float] = time.time,
) -> dg.SensorDefinition:
    """The export sensor; with ``tenants`` it polls every tenant whose ``create_customer`` is on,
    keeping one Sequence per tenant in a JSON cursor. ``tenant_seconds`` is
    ``MONITOR_SENSOR_TENANT_SECONDS``, ``clock`` the wall clock of the backoff (tests)."""
    if poll_seconds < 1:
        raise ValueError("poll_seconds must be at least 1")
    looks = TenantLooks(name, tenant_seconds, poll_seconds, clock)

    @dg.sensor(
        name=name,
        # by name: a job object here makes Definitions rebuild the sensor, which emits a BetaWarning (owners)
        job_name=EXPORT_JOB_NAME,
        minimum_interval_seconds=poll_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING if enabled_by_default else dg.DefaultSensorStatus.STOPPED,
        description="Customer export: polls the App4Sales new-customer feed and launches export_new_customer_job "
                    "once per new customer (run key = CustomerGuid). Cursor = last feed Sequence.",
        tags={"flow": "customer_export"},
    )
    def _sensor(context: dg.SensorEvaluationContext, tenancy: dg.ResourceParam[MonitorTenancy]) -> dg.SensorResult | dg.SkipReason:
        limits = {"page_size": page_size, "max_items": max_items_per_tick}
        if tenants:
            return _poll_tenants(context, looks, tenancy, tenants, limits)
        start = parse_cursor(context.cursor)

        def look(_tenant: None, seconds: float, log) -> Outcome:
            run_requests, last, failure = poll_feed(log, tenancy.app4sales.one_attempt(seconds), start,
                                                    seconds=seconds, **limits)
            return Outcome(run_requests, last, failure=failure)

        found = looks.tick(context, [None], look, backoff=None, is_transient=_transient, raise_permanent=True)
        if None not in found.states or found.reasons:  # the feed failed, or did not answer in time
            return dg.SkipReason("; ".join(found.reasons))
        last = found.states[None]
        events = backlog_observations(context.instance, {None: len(found.requests)})
        if last == start:
            return dg.SensorResult(skip_reason=f"no new customers after Sequence {start}", cursor=str(start),
                                   asset_events=events)
        context.log.info(f"{len(found.requests)} new customers, cursor {start} → {last}")
        return dg.SensorResult(run_requests=found.requests, cursor=str(last), asset_events=events)

    return _sensor


def _poll_tenants(context: dg.SensorEvaluationContext, looks: TenantLooks, tenancy: MonitorTenancy,
                  tenants: Mapping[str, Tenant], limits: dict) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    names = [name for name, tenant in tenants.items() if tenant.settings.create_customer]
    starts = {name: parse_cursor(str(cursor.get(name, 0))) for name in names}

    def look(name: str, seconds: float, log) -> Outcome:
        app4sales = tenancy.for_tenant(name).app4sales.one_attempt(seconds)
        run_requests, last, failure = poll_feed(log, app4sales, starts[name], tenant=name,
                                                tags=host_tags(tenants[name]), seconds=seconds, **limits)
        return Outcome(run_requests, last, failure=failure)

    found = looks.tick(context, names, look, backoff=cursor.get(BACKOFF_KEY, {}), is_transient=_transient)
    cursor.update({name: starts[name] for name in names})
    cursor.update(found.states)
    if found.backoff:
        cursor[BACKOFF_KEY] = found.backoff
    else:
        cursor.pop(BACKOFF_KEY, None)
    new = {name: 0 for name in names if name in found.states}  # the tenants whose feed answered
    for request in found.requests:
        new[request.partition_key] = new.get(request.partition_key, 0) + 1
    return found.sensor_result(context, json.dumps(cursor, sort_keys=True), nothing="no new customers for any tenant",
                               asset_events=backlog_observations(context.instance, new))


def new_customer_sensor_from_env(environ: Mapping[str, str] | None = None,
                                 tenants: Mapping[str, Tenant] | None = None) -> dg.SensorDefinition:
    """The sensor as ``MONITOR_CREATE_CUSTOMER`` and ``MONITOR_EXPORT_POLL_SECONDS`` configure it (SPEC §2,
    ``ExportSettings``), with ``MONITOR_SENSOR_TENANT_SECONDS`` (``DeploymentSettings``)."""
    settings = ExportSettings.from_env(environ)
    return build_new_customer_sensor(enabled_by_default=settings.create_customer,
                                     poll_seconds=settings.export_poll_seconds, tenants=tenants,
                                     tenant_seconds=DeploymentSettings.from_env(environ).sensor_tenant_seconds)


new_customer_sensor = new_customer_sensor_from_env()
