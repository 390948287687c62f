"""Schedule ``customer_sync_schedule``: the safety net under the file sensor."""

from __future__ import annotations

import dagster as dg

from monitor_pipeline.errors import ConfigError
from monitor_pipeline.lib.env import env_str


def build_customer_sync_schedule() -> dg.ScheduleDefinition | None:
    """``MONITOR_SYNC_SCHEDULE``: a cron expression (default hourly), or ``off``."""
    cron = env_str("MONITOR_SYNC_SCHEDULE", "0 * * * *")
    if cron.lower() in ("off", "false", "none"):
        return None
    try:
        return _schedule(cron)
    except dg.DagsterInvalidDefinitionError:
        raise ConfigError(f"MONITOR_SYNC_SCHEDULE={cron!r} is not a cron expression (or 'off')") from None


def _schedule(cron: str) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="customer_sync_schedule",
        job_name="customer_sync_job",
        cron_schedule=cron,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Runs customer_sync_job on '{cron}' even if the file sensor missed a version; "
                    "an unchanged file sends nothing.",
    )
