"""The export's backlog as a figure the UI plots: ``feed_backlog`` on ``monitor_customer_files``.

Each tick of ``new_customer_sensor`` knows how many new App4Sales customers it just found in the feed;
the instance knows how many export runs of earlier ticks are still queued or running. Their sum is the
number of customers created in App4Sales whose file is not yet in Monitor's ``customers/`` folder (nor
their failure recorded): the backlog. The sensor reports it as an ``AssetObservation`` of
``monitor_customer_files`` (for the tenant's partition with tenants), with ``feed_new_customers`` and
``exports_in_progress`` beside it, whenever it finds customers or the backlog differs from the last one
reported — so the asset's metadata plots (Overview → Metadata → Plots) show every rise and its way back
to 0, not one point per tick (a tick every 30 s would be 2,880 observations a day).
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from monitor_pipeline.defs.customer_export.asset import MONITOR_CUSTOMER_FILES
from monitor_pipeline.defs.customer_export.job import EXPORT_JOB_NAME

IN_PROGRESS = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
               dg.DagsterRunStatus.STARTED]
BACKLOG = "feed_backlog"
_LOOK_BACK = 50  # observations of the asset searched for the last backlog (failed exports are observations too)


def exports_in_progress(instance: dg.DagsterInstance, tenant: str | None) -> int:
    """Export runs queued or running (for ``tenant``'s partition when given)."""
    tags = {"dagster/partition": tenant} if tenant is not None else {}
    return instance.get_runs_count(dg.RunsFilter(job_name=EXPORT_JOB_NAME, statuses=IN_PROGRESS, tags=tags))


def last_backlog(instance: dg.DagsterInstance, tenant: str | None) -> int | None:
    """The backlog the sensor reported last (None: never)."""
    records = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=MONITOR_CUSTOMER_FILES,
                              asset_partitions=[tenant] if tenant is not None else None), limit=_LOOK_BACK).records
    for record in records:
        entry = record.asset_observation.metadata.get(BACKLOG) if record.asset_observation else None
        if entry is not None:
            return int(entry.value)
    return None


def backlog_observations(instance: dg.DagsterInstance, found: Mapping[str | None, int]) -> list[dg.AssetObservation]:
    """For each tenant that answered this tick (None: no tenants) with the number of new customers it
    found: an observation when there are any, or when the backlog changed since the last one."""
    events = []
    for tenant, new in found.items():
        running = exports_in_progress(instance, tenant)
        backlog = new + running
        if new or backlog != (last_backlog(instance, tenant) or 0):
            events.append(dg.AssetObservation(
                asset_key=MONITOR_CUSTOMER_FILES, partition=tenant,
                description="new_customer_sensor: App4Sales customers not yet delivered",
                metadata={BACKLOG: dg.MetadataValue.int(backlog), "feed_new_customers": dg.MetadataValue.int(new),
                          "exports_in_progress": dg.MetadataValue.int(running)}))
    return events
