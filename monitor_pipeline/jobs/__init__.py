"""Jobs: the customer sync (assets) and the customer export (ops)."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from monitor_pipeline.tenants import Tenant

FTP_HOST_TAG = "monitor_pipeline/ftp_host"
APP4SALES_HOST_TAG = "monitor_pipeline/app4sales_host"


def host_tags(tenant: Tenant) -> dict[str, str]:
    """Run tags the queued run coordinator limits per unique value (dagster.yaml, tag_concurrency_limits)."""
    return {FTP_HOST_TAG: tenant.monitor.host, APP4SALES_HOST_TAG: tenant.app4sales.host, "monitor_pipeline/tenant": tenant.name}


def build_customer_sync_job(partitions_def: dg.PartitionsDefinition | None = None,
                            tenants: Mapping[str, Tenant] | None = None) -> dg.UnresolvedAssetJobDefinition:
    config = None
    if partitions_def is not None and tenants:
        config = dg.PartitionedConfig(
            partitions_def=partitions_def,
            run_config_for_partition_key_fn=lambda key: {},
            tags_for_partition_key_fn=lambda key: host_tags(tenants[key]),
        )
    return dg.define_asset_job(
        "customer_sync_job",
        selection=dg.AssetSelection.groups("customer_sync"),
        config=config,
        description="Monitor → App4Sales: download customers.xml, normalize it, upsert the changes"
                    + (" (one run per tenant partition)." if partitions_def else "."),
    )
