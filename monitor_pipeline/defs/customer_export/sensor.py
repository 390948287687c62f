"""``new_customer_sensor``: polls the App4Sales new-customer feed, one export run per customer (SPEC §6).

Cursor: the last ``Sequence`` seen (start ``0``). Each tick pages through
``GET newcustomers?after=<cursor>&take=100`` until a short page, at most ``max_items_per_tick``
items, and requests one ``export_new_customer_job`` run per item with ``run_key = CustomerGuid``,
so no customer is exported twice by the sensor. The feed item goes into the run config.

- Transient App4Sales failure (retries exhausted, connection error): ``SkipReason``, cursor
  unchanged (if earlier pages of the same tick succeeded, their runs are requested and the
  cursor advances only past them).
- Authentication failure: the tick raises, so it fails loudly in the UI.

Environment: ``MONITOR_CREATE_CUSTOMER`` (default true → the sensor runs by default; false →
stopped by default) and ``MONITOR_EXPORT_POLL_SECONDS`` (default 30) → minimum interval.
"""

# No ``from __future__ import annotations``: Dagster reads the resource annotation at decoration time.
import json
from collections.abc import Mapping

import dagster as dg
import requests

from monitor_pipeline.app4sales.errors import App4SalesAuthError, App4SalesTransientError
from monitor_pipeline.defs.run_tags import host_tags
from monitor_pipeline.defs.customer_export.job import EXPORT_JOB_NAME, run_config_for
from monitor_pipeline.export.settings import ExportSettings
from monitor_pipeline.resources.app4sales import App4SalesApi
from monitor_pipeline.resources.tenancy import MonitorTenancy
from monitor_pipeline.tenants import Tenant

SENSOR_NAME = "new_customer_sensor"
PAGE_SIZE = 100
MAX_ITEMS_PER_TICK = 1000

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


def poll_feed(context: dg.SensorEvaluationContext, app4sales: App4SalesApi, start: int, *, tenant: str | None = None,
              page_size: int = PAGE_SIZE, max_items: int = MAX_ITEMS_PER_TICK,
              tags: Mapping[str, str] | None = None) -> tuple[list[dg.RunRequest], int, str | None]:
    """Read the feed after ``start``: (run requests, last Sequence read, reason when the feed failed)."""
    last = start
    run_requests: list[dg.RunRequest] = []
    seen = 0
    prefix = f"{tenant}: " if tenant else ""
    try:
        with app4sales.client() as client:
            while seen < max_items:
                take = min(page_size, max_items - seen)
                page = client.new_customers(after=last, take=take)
                for item in page:
                    sequence = int(item["Sequence"])
                    if sequence <= last:  # the feed is strictly increasing; never go back
                        context.log.warning(f"{prefix}feed item with Sequence {sequence} ≤ cursor {last} ignored")
                        continue
                    last = sequence
                    seen += 1
                    guid = item.get("CustomerGuid")
                    if not guid:
                        context.log.error(f"{prefix}feed item Sequence {sequence} has no CustomerGuid; skipped")
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
        context.log.warning(f"{reason}; requesting the {len(run_requests)} customers read so far")
    return run_requests, last, None


def build_new_customer_sensor(
    enabled_by_default: bool = True,
    poll_seconds: int = 30,
    *,
    name: str = SENSOR_NAME,
    page_size: int = PAGE_SIZE,
    max_items_per_tick: int = MAX_ITEMS_PER_TICK,
    tenants: Mapping[str, Tenant] | None = None,
) -> dg.SensorDefinition:
    """The export sensor; with ``tenants`` it polls every tenant whose ``create_customer`` is on,
    keeping one Sequence per tenant in a JSON cursor."""
    if poll_seconds < 1:
        raise ValueError("poll_seconds must be at least 1")

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
            return _poll_tenants(context, tenancy, tenants, limits)
        start = parse_cursor(context.cursor)
        run_requests, last, failure = poll_feed(context, tenancy.app4sales, start, **limits)
        if failure:
            return dg.SkipReason(failure)
        if last == start:
            return dg.SensorResult(skip_reason=f"no new customers after Sequence {start}", cursor=str(start))
        context.log.info(f"{len(run_requests)} new customers, cursor {start} → {last}")
        return dg.SensorResult(run_requests=run_requests, cursor=str(last))

    return _sensor


def _poll_tenants(context: dg.SensorEvaluationContext, tenancy: dg.ResourceParam[MonitorTenancy], tenants: Mapping[str, Tenant],
                  limits: dict) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    run_requests: list[dg.RunRequest] = []
    reasons = []
    for name, tenant in tenants.items():
        if not tenant.settings.create_customer:
            continue
        start = parse_cursor(str(cursor.get(name, 0)))
        requests_, cursor[name], failure = poll_feed(context, tenancy.for_tenant(name).app4sales, start, tenant=name,
                                                     tags=host_tags(tenant), **limits)
        run_requests += requests_
        if failure:
            reasons.append(failure)
    skip = None if run_requests else ("; ".join(reasons) or "no new customers for any tenant")
    return dg.SensorResult(run_requests=run_requests, skip_reason=skip, cursor=json.dumps(cursor, sort_keys=True))


def new_customer_sensor_from_env(environ: Mapping[str, str] | None = None,
                                 tenants: Mapping[str, Tenant] | None = None) -> dg.SensorDefinition:
    """The sensor as ``MONITOR_CREATE_CUSTOMER`` and ``MONITOR_EXPORT_POLL_SECONDS`` configure it (SPEC §2,
    ``ExportSettings``)."""
    settings = ExportSettings.from_env(environ)
    return build_new_customer_sensor(enabled_by_default=settings.create_customer,
                                     poll_seconds=settings.export_poll_seconds, tenants=tenants)


new_customer_sensor = new_customer_sensor_from_env()
