"""The customer export's definitions for one deployment: the job partitioned like the sync when there are
tenants (the tenant is the run's partition in both flows), and the asset its runs record, group
``customer_export``, partitioned the same way (:mod:`monitor_pipeline.defs.customer_export.asset`)."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from monitor_pipeline.defs.customer_export.asset import monitor_customer_files_spec
from monitor_pipeline.defs.customer_export.job import build_export_new_customer_job
from monitor_pipeline.defs.customer_export.sensor import new_customer_sensor_from_env
from monitor_pipeline.defs.retries import step_retry_policy
from monitor_pipeline.deployment import DeploymentSettings
from monitor_pipeline.tenants import Tenant


def customer_export_definitions(tenants: Mapping[str, Tenant] | None, partitions: dg.PartitionsDefinition | None,
                                deployment: DeploymentSettings | None = None) -> dg.Definitions:
    policy = step_retry_policy(deployment or DeploymentSettings.from_env())
    return dg.Definitions(assets=[monitor_customer_files_spec(partitions)],
                          jobs=[build_export_new_customer_job(partitions, policy)],
                          sensors=[new_customer_sensor_from_env(tenants=tenants)])
