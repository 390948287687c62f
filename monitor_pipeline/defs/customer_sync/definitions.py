"""The customer sync's definitions for one deployment: one partition per tenant when there are tenants."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from monitor_pipeline.defs.customer_sync.assets import build_customer_sync_assets
from monitor_pipeline.defs.customer_sync.export_acknowledgment import build_exported_customers_arrived
from monitor_pipeline.defs.customer_sync.health import build_tenant_health
from monitor_pipeline.defs.customer_sync.job import build_customer_sync_job
from monitor_pipeline.defs.customer_sync.schedule import build_customer_sync_schedule
from monitor_pipeline.defs.customer_sync.sensor import build_customers_xml_sensor
from monitor_pipeline.defs.retries import step_retry_policy
from monitor_pipeline.deployment import DeploymentSettings
from monitor_pipeline.tenants import Tenant


def customer_sync_definitions(deployment: DeploymentSettings, tenants: Mapping[str, Tenant] | None,
                              partitions: dg.PartitionsDefinition | None, app4sales_url: str) -> dg.Definitions:
    schedule = build_customer_sync_schedule(tenants, deployment)
    health_check, health_job, health_schedule = build_tenant_health(tenants)
    return dg.Definitions(
        assets=build_customer_sync_assets(partitions, step_retry_policy(deployment)),
        asset_checks=[health_check, build_exported_customers_arrived()],
        jobs=[build_customer_sync_job(partitions, tenants, app4sales_url=app4sales_url), health_job],
        sensors=[build_customers_xml_sensor(tenants, minimum_interval_seconds=deployment.file_sensor_seconds,
                                            tenant_seconds=deployment.sensor_tenant_seconds)],
        schedules=([schedule] if schedule else []) + [health_schedule],
    )
