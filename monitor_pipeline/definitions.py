"""The code location: ``dagster dev -m monitor_pipeline.definitions`` or ``-w workspace.yaml``."""

import dagster as dg

from monitor_pipeline.assets import customer_sync_assets
from monitor_pipeline.jobs import customer_sync_job
from monitor_pipeline.resources import build_resources


def build_defs() -> dg.Definitions:
    """Definitions from the current environment (SPEC §2); a bad setting fails here, naming the variable."""
    return dg.Definitions(
        assets=customer_sync_assets,
        jobs=[customer_sync_job],
        resources=build_resources(),
    )


defs = build_defs()
