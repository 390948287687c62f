"""Jobs: the customer sync (assets) and the customer export (ops)."""

from __future__ import annotations

from collections.abc import Mapping

from urllib.parse import urlsplit

import dagster as dg

from monitor_pipeline.app4sales.client import parse_base_url
from monitor_pipeline.tenants import Tenant

FTP_HOST_TAG = "monitor_pipeline/ftp_host"
APP4SALES_HOST_TAG = "monitor_pipeline/app4sales_host"
ADMINISTRATION_TAG = "monitor_pipeline/app4sales_administration"


def host_tags(tenant: Tenant) -> dict[str, str]:
    """Run tags the queued run coordinator limits per unique value (dagster.yaml, tag_concurrency_limits)."""
    return {FTP_HOST_TAG: tenant.monitor.host, APP4SALES_HOST_TAG: tenant.app4sales.host, "monitor_pipeline/tenant": tenant.name}


def administration_key(app4sales_url: str) -> str:
    """``host:port/administration`` of an App4Sales base URL: the value of :data:`ADMINISTRATION_TAG`."""
    base, administration = parse_base_url(app4sales_url)
    return f"{urlsplit(base).netloc}/{administration}"


def sync_tags(tenant: Tenant) -> dict[str, str]:
    """Tags of a customer-sync run: the host tags, plus the administration it writes into, which
    dagster.yaml limits to one run at a time (SPEC §5 "one writer per administration"; the state's own
    lock holds for runs that bypass the queue, e.g. ``dagster job execute``)."""
    return {**host_tags(tenant), ADMINISTRATION_TAG: administration_key(tenant.app4sales.url)}


def build_customer_sync_job(partitions_def: dg.PartitionsDefinition | None = None,
                            tenants: Mapping[str, Tenant] | None = None,
                            app4sales_url: str | None = None) -> dg.UnresolvedAssetJobDefinition:
    """``customer_sync_job``. Every run carries :data:`ADMINISTRATION_TAG` however it starts (launchpad,
    sensor, schedule, backfill of the job's partitions): per tenant partition through the partitioned
    config, else as a job tag from ``app4sales_url``."""
    config = None
    if partitions_def is not None and tenants:
        config = dg.PartitionedConfig(
            partitions_def=partitions_def,
            run_config_for_partition_key_fn=lambda key: {},
            tags_for_partition_key_fn=lambda key: sync_tags(tenants[key]),
        )
    tags = {ADMINISTRATION_TAG: administration_key(app4sales_url)} if app4sales_url and not tenants else None
    return dg.define_asset_job(
        "customer_sync_job",
        selection=dg.AssetSelection.groups("customer_sync"),
        config=config,
        tags=tags,
        description="Monitor → App4Sales: download customers.xml, normalize it, upsert the changes"
                    + (" (one run per tenant partition)." if partitions_def else "."),
    )
