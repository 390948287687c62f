"""Sensor ``customers_xml_sensor``: one ``customer_sync_job`` run per new, settled version of customers.xml.

A version (mtime and size) is requested once it is the same on two ticks in a row, so a file
Monitor is still writing never starts a sync. With tenants, every tenant's file is watched and
its run targets the tenant's partition; the cursor keeps one state per tenant.
"""

import json
from collections.abc import Mapping

import dagster as dg

from monitor_pipeline.defs.run_tags import sync_tags
from monitor_pipeline.resources.tenancy import MonitorTenancy, TenantResources
from monitor_pipeline.tenants import Tenant
from monitor_pipeline.transport import RemoteNotFoundError, TransportError

SINGLE = "default"


def version_of(size: int, mtime) -> str:
    return f"{mtime.isoformat()}|{size}"


def decide(state: dict, seen: str) -> tuple[bool, dict]:
    """Request a run when ``seen`` equals the version seen on the previous tick and was not requested yet."""
    settled = state.get("candidate") == seen
    if settled and state.get("requested") != seen:
        return True, {"candidate": seen, "requested": seen}
    return False, {**state, "candidate": seen}


def _look(resources: TenantResources, state: dict) -> tuple[dg.RunRequest | None, dict, str]:
    tenant = resources.name
    remote = resources.settings.customers_xml_path()
    label = f"{tenant}: {remote}" if tenant else remote
    try:
        with resources.monitor_ftp.open() as transport:
            stat = transport.stat(remote)
    except RemoteNotFoundError as exc:
        return None, state, f"No customers.xml yet ({label}): {exc}"
    except TransportError as exc:
        if exc.transient:
            return None, state, f"{label}: server not reachable right now, trying again next tick: {exc}"
        raise
    seen = version_of(stat.size, stat.mtime)
    request, new_state = decide(state, seen)
    if not request:
        why = ("already synced" if new_state.get("requested") == seen
               else "new version seen; waiting one more tick to be sure it is no longer being written")
        return None, new_state, f"{label} {seen}: {why}"
    run_key = f"customers.xml|{seen}" if tenant is None else f"{tenant}|customers.xml|{seen}"
    return dg.RunRequest(run_key=run_key, partition_key=tenant,
                         tags={"monitor_pipeline/customers_xml_version": seen}), new_state, ""


def build_customers_xml_sensor(tenants: Mapping[str, Tenant] | None = None, minimum_interval_seconds: int = 60,
                               default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING):
    names: list[str | None] = list(tenants) if tenants else [None]

    @dg.sensor(
        name="customers_xml_sensor",
        job_name="customer_sync_job",
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="Watches customers.xml (size and mtime); once a new version is the same on two ticks in a row, "
                    "requests customer_sync_job (run key: name, mtime, size).",
    )
    def customers_xml_sensor(context: dg.SensorEvaluationContext, tenancy: dg.ResourceParam[MonitorTenancy]):
        cursor = json.loads(context.cursor) if context.cursor else {}
        requests, reasons = [], []
        for tenant in names:
            key = tenant or SINGLE
            request, cursor[key], reason = _look(tenancy.for_tenant(tenant), cursor.get(key, {}))
            if request is not None:
                if tenants:
                    request = request.with_replaced_attrs(tags={**request.tags, **sync_tags(tenants[tenant])})
                requests.append(request)
            elif reason:
                reasons.append(reason)
        skip = dg.SkipReason("; ".join(reasons)) if not requests else None
        return dg.SensorResult(run_requests=requests, skip_reason=skip, cursor=json.dumps(cursor, sort_keys=True))

    return customers_xml_sensor
