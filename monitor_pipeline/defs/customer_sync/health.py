"""Check ``every_tenant_synced_recently``: one red check when any tenant's sync is stale, however fresh the others.

A freshness policy judges an asset by its newest materialization of any partition, so one tenant synced
a minute ago hides another that has not synced for days. This check looks at every tenant's own last
successful ``customer_upsert_batches`` (the materialization of its partition) and fails when any is older
than that tenant's ``MONITOR_SYNC_STALE_HOURS`` (per tenant in the tenants file), or has never synced.
Its metadata is a table of every tenant with its last sync and age, plus the counts the UI plots.

It is evaluated after each sync run (it is part of ``customer_sync_job``) and, so that a tenant whose
runs stopped altogether still turns red, by ``tenant_health_schedule`` (``tenant_health_job``, every hour).
"""


import time
from collections.abc import Mapping
from datetime import datetime, timezone

import dagster as dg

from monitor_pipeline.resources.connector_settings import ConnectorSettings
from monitor_pipeline.tenants import Tenant

CHECK_NAME = "every_tenant_synced_recently"
UPSERT_ASSET = dg.AssetKey("customer_upsert_batches")
SINGLE = "default"  # the one tenant of the variables, as the sensors' cursor names it

TENANT_TABLE = dg.TableSchema(columns=[
    dg.TableColumn("tenant", "string"),
    dg.TableColumn("status", "string", description="fresh, stale or never synced"),
    dg.TableColumn("last_sync_utc", "string", description="end of its last successful customer_upsert_batches"),
    dg.TableColumn("age_hours", "float"),
    dg.TableColumn("window_hours", "float", description="MONITOR_SYNC_STALE_HOURS of the tenant"),
])


def last_sync(instance: dg.DagsterInstance, tenant: str | None) -> float | None:
    """When ``tenant``'s partition (None: the unpartitioned asset) was last materialized, as a Unix time."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=UPSERT_ASSET, asset_partitions=[tenant] if tenant else None), limit=1).records
    return records[0].timestamp if records else None


def tenant_rows(instance: dg.DagsterInstance, windows: Mapping[str | None, float], now: float) -> list[dict]:
    """One row per tenant (``windows``: tenant → stale window in hours), stale and never-synced first."""
    rows = []
    for tenant, window in windows.items():
        last = last_sync(instance, tenant)
        age = None if last is None else (now - last) / 3600
        status = "never synced" if last is None else ("stale" if age > window else "fresh")
        rows.append({"tenant": tenant or SINGLE, "status": status,
                     "last_sync_utc": "" if last is None else
                     datetime.fromtimestamp(last, timezone.utc).isoformat(timespec="seconds"),
                     "age_hours": None if age is None else round(age, 2), "window_hours": window})
    order = {"never synced": 0, "stale": 1, "fresh": 2}
    return sorted(rows, key=lambda r: (order[r["status"]], -(r["age_hours"] or 0), r["tenant"]))


def health_result(rows: list[dict]) -> dg.AssetCheckResult:
    bad = [r for r in rows if r["status"] != "fresh"]
    ages = [r["age_hours"] for r in rows if r["age_hours"] is not None]
    table = [dg.TableRecord({k: ("" if v is None else v) for k, v in r.items()}) for r in rows]
    return dg.AssetCheckResult(
        check_name=CHECK_NAME,
        asset_key=UPSERT_ASSET,
        passed=not bad,
        description=("every tenant synced within its window" if not bad else
                     "stale: " + ", ".join(f"{r['tenant']} ({r['status']}"
                                           + (f", {r['age_hours']:g} h" if r["age_hours"] is not None else "") + ")"
                                           for r in bad[:20])),
        metadata={
            "tenants": len(rows),
            "stale_tenants": len(bad),
            "oldest_sync_age_hours": dg.MetadataValue.float(max(ages) if ages else 0.0),
            "tenant_health": dg.MetadataValue.table(table[:200], schema=TENANT_TABLE),
        },
    )


def build_tenant_health(tenants: Mapping[str, Tenant] | None):
    """The check, the job that evaluates only it, and its hourly schedule."""

    @dg.asset_check(
        asset=UPSERT_ASSET,
        name=CHECK_NAME,
        blocking=False,
        description="Every tenant's own last successful sync is within its MONITOR_SYNC_STALE_HOURS (default 26 h); "
                    "the metadata lists each tenant's last sync.",
    )
    def every_tenant_synced_recently(context: dg.AssetCheckExecutionContext,
                                     connector_settings: ConnectorSettings) -> dg.AssetCheckResult:
        if tenants:
            windows = {name: tenant.settings.stale_after_hours for name, tenant in tenants.items()}
        else:
            windows = {None: connector_settings.stale_after_hours}
        return health_result(tenant_rows(context.instance, windows, time.time()))

    job = dg.define_asset_job(
        "tenant_health_job", selection=dg.AssetSelection.checks(every_tenant_synced_recently),
        description=f"Evaluates {CHECK_NAME} alone (no download, nothing sent).")
    schedule = dg.ScheduleDefinition(
        name="tenant_health_schedule", job=job, cron_schedule="17 * * * *",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Every hour: {CHECK_NAME}, so a tenant whose syncs stopped altogether still turns red.")
    return every_tenant_synced_recently, job, schedule
