"""The code location: ``dagster dev -w workspace.yaml`` (or ``dg dev``, ``-m monitor_pipeline.definitions``).

Cross-cutting policy in one place: the deployment's settings and tenants (one partition per tenant, the
same for both flows), the areas of ``monitor_pipeline/defs/`` merged, the resources bound.
"""

import dagster as dg

from monitor_pipeline.defs.customer_export.definitions import customer_export_definitions
from monitor_pipeline.defs.customer_sync.definitions import customer_sync_definitions
from monitor_pipeline.deployment import DeploymentSettings
from monitor_pipeline.resources import build_resources
from monitor_pipeline.tenants import load_tenants


def build_defs() -> dg.Definitions:
    """Definitions from the current environment (SPEC §2); a bad setting fails here, naming the variable.

    With ``MONITOR_TENANTS_FILE`` the customer-sync assets and the export job are partitioned by tenant;
    without it nothing is partitioned and one tenant comes from the SPEC §2 variables.
    """
    deployment = DeploymentSettings.from_env()
    tenants = load_tenants(deployment.tenants_file) if deployment.tenants_file else None
    partitions = dg.StaticPartitionsDefinition(list(tenants)) if tenants else None
    resources = build_resources(deployment)
    return dg.Definitions.merge(
        customer_sync_definitions(deployment, tenants, partitions, app4sales_url=resources["app4sales"].url),
        customer_export_definitions(tenants, partitions, deployment),
        dg.Definitions(resources=resources),
    )


defs = build_defs()
