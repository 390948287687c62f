"""Sensor ``customers_xml_sensor``: one ``customer_sync_job`` run per new, settled version of customers.xml.

A version (mtime and size) is requested once it is the same on two ticks in a row, so a file
Monitor is still writing never starts a sync. With tenants, every tenant's file is watched and
its run targets the tenant's partition; the cursor keeps one state per tenant.

The tenants' servers are looked at all at once, each with one attempt under
``MONITOR_SENSOR_TENANT_SECONDS`` (``tenant_looks``): a server that does not answer is named in the
tick, its tenant's state is kept (a version seen once stays the candidate) and it is looked at less
often while it keeps failing; the other tenants' runs are requested in the same tick.
"""

import json
import time
from collections.abc import Callable, Mapping

import dagster as dg

from monitor_pipeline.defs.run_tags import sync_tags
from monitor_pipeline.defs.tenant_looks import BACKOFF_KEY, SINGLE, Outcome, TenantLooks
from monitor_pipeline.deployment import DeploymentSettings
from monitor_pipeline.resources.tenancy import MonitorTenancy, TenantResources
from monitor_pipeline.tenants import Tenant
from monitor_pipeline.transport import RemoteNotFoundError

SENSOR_NAME = "customers_xml_sensor"
TENANT_SECONDS = DeploymentSettings.model_fields["sensor_tenant_seconds"].default


def version_of(size: int, mtime) -> str:
    return f"{mtime.isoformat()}|{size}"


def decide(state: dict, seen: str) -> tuple[bool, dict]:
    """Request a run when ``seen`` equals the version seen on the previous tick and was not requested yet."""
    settled = state.get("candidate") == seen
    if settled and state.get("requested") != seen:
        return True, {"candidate": seen, "requested": seen}
    return False, {**state, "candidate": seen}


def _look(resources: TenantResources, state: dict, seconds: float) -> Outcome:
    """One look at a tenant's customers.xml; a failure to reach the server raises (``TenantLooks`` tells
    transient from permanent)."""
    tenant = resources.name
    remote = resources.settings.customers_xml_path()
    label = f"{tenant}: {remote}" if tenant else remote
    try:
        with resources.monitor_ftp.one_attempt(seconds).open() as transport:
            stat = transport.stat(remote)
    except RemoteNotFoundError as exc:
        return Outcome(state=state, reason=f"No customers.xml yet ({label}): {exc}")
    seen = version_of(stat.size, stat.mtime)
    request, new_state = decide(state, seen)
    if not request:
        why = ("already synced" if new_state.get("requested") == seen
               else "new version seen; waiting one more tick to be sure it is no longer being written")
        return Outcome(state=new_state, reason=f"{label} {seen}: {why}")
    run_key = f"customers.xml|{seen}" if tenant is None else f"{tenant}|customers.xml|{seen}"
    return Outcome([dg.RunRequest(run_key=run_key, partition_key=tenant,
                                  tags={"monitor_pipeline/customers_xml_version": seen})], new_state)


def _transient(exc: BaseException) -> bool:
    return bool(getattr(exc, "transient", False))


def build_customers_xml_sensor(tenants: Mapping[str, Tenant] | None = None, minimum_interval_seconds: int = 60,
                               default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING, *,
                               tenant_seconds: float = TENANT_SECONDS, clock: Callable[[], float] = time.time):
    """The sensor over ``tenants`` (None: the one tenant of the variables); ``tenant_seconds`` is
    ``MONITOR_SENSOR_TENANT_SECONDS``, ``clock`` the wall clock of the backoff (tests)."""
    names: list[str | None] = list(tenants) if tenants else [None]
    looks = TenantLooks(SENSOR_NAME, tenant_seconds, minimum_interval_seconds, clock)

    @dg.sensor(
        name=SENSOR_NAME,
        job_name="customer_sync_job",
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="Watches customers.xml (size and mtime); once a new version is the same on two ticks in a row, "
                    "requests customer_sync_job (run key: name, mtime, size).",
    )
    def customers_xml_sensor(context: dg.SensorEvaluationContext, tenancy: dg.ResourceParam[MonitorTenancy]):
        cursor = json.loads(context.cursor) if context.cursor else {}
        states = {tenant: dict(cursor.get(tenant or SINGLE, {})) for tenant in names}

        def look(tenant: str | None, seconds: float, log) -> Outcome:
            outcome = _look(tenancy.for_tenant(tenant), states[tenant], seconds)
            if tenants:
                outcome.requests = [r.with_replaced_attrs(tags={**r.tags, **sync_tags(tenants[tenant])})
                                    for r in outcome.requests]
            return outcome

        found = looks.tick(context, names, look, backoff=cursor.get(BACKOFF_KEY, {}), is_transient=_transient,
                           raise_permanent=not tenants)
        for tenant, state in found.states.items():
            cursor[tenant or SINGLE] = state
        if found.backoff:
            cursor[BACKOFF_KEY] = found.backoff
        else:
            cursor.pop(BACKOFF_KEY, None)
        return found.sensor_result(context, json.dumps(cursor, sort_keys=True))

    return customers_xml_sensor
