"""Assets of the customer sync: raw export → frames → App4Sales; one partition per tenant when there are tenants."""

import dagster as dg

from monitor_pipeline.defs.customer_sync.customer_frames import build_customer_frames
from monitor_pipeline.defs.customer_sync.customers_xml import build_customers_xml
from monitor_pipeline.defs.customer_sync.upsert import build_customer_upsert_batches


def build_customer_sync_assets(partitions_def: dg.PartitionsDefinition | None = None,
                               retry_policy: dg.RetryPolicy | None = None) -> list[dg.AssetsDefinition]:
    """The three steps; ``retry_policy``: Dagster's retry of a step that failed transiently
    (:mod:`monitor_pipeline.defs.retries`)."""
    return [build_customers_xml(partitions_def, retry_policy), build_customer_frames(partitions_def, retry_policy),
            build_customer_upsert_batches(partitions_def, retry_policy)]
