"""Schedule ``customer_sync_schedule``: the safety net under the file sensor."""

from collections.abc import Mapping

import dagster as dg

from monitor_pipeline.errors import ConfigError
from monitor_pipeline.defs.run_tags import sync_tags
from monitor_pipeline.deployment import DeploymentSettings
from monitor_pipeline.tenants import Tenant


def build_customer_sync_schedule(tenants: Mapping[str, Tenant] | None = None,
                                 deployment: DeploymentSettings | None = None) -> dg.ScheduleDefinition | None:
    """``MONITOR_SYNC_SCHEDULE`` (``DeploymentSettings.sync_schedule``): a cron expression (default hourly),
    or ``off``. One run per tenant."""
    deployment = deployment or DeploymentSettings.from_env()
    cron = deployment.sync_schedule
    if deployment.schedule_off:
        return None
    try:
        return _schedule(cron, tenants)
    except dg.DagsterInvalidDefinitionError:
        raise ConfigError(f"MONITOR_SYNC_SCHEDULE={cron!r} is not a cron expression (or 'off')") from None


def _schedule(cron: str, tenants: Mapping[str, Tenant] | None) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="customer_sync_schedule",
        job_name="customer_sync_job",
        cron_schedule=cron,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Runs customer_sync_job on '{cron}' (every tenant) even if the file sensor missed a version; "
                    "an unchanged file sends nothing.",
    )
    def customer_sync_schedule(context: dg.ScheduleEvaluationContext):
        stamp = context.scheduled_execution_time.isoformat()
        if not tenants:
            return dg.RunRequest(run_key=f"schedule|{stamp}")
        return [dg.RunRequest(run_key=f"schedule|{name}|{stamp}", partition_key=name, tags=sync_tags(tenant))
                for name, tenant in tenants.items()]

    return customer_sync_schedule
