"""``customer_sync_job``: the customer-sync assets, one run per tenant partition when there are tenants."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from monitor_pipeline.defs.run_tags import ADMINISTRATION_TAG, administration_key, sync_tags
from monitor_pipeline.tenants import Tenant


def _in_process_by_default() -> dg.ExecutorDefinition:
    """Dagster's ``multi_or_in_process_executor`` with ``in_process`` as its default: the job's three steps
    run one after the other anyway, and a process per step costs seconds of imports per run. Run config
    ``execution: {config: {multiprocess: {}}}`` brings the multiprocess executor back."""
    default = dg.multi_or_in_process_executor
    return dg.ExecutorDefinition(
        name=default.name,
        config_schema=dg.Field(default.config_field.config_type, default_value={"in_process": {}}),
        requirements=default.get_requirements,
        executor_creation_fn=default.executor_creation_fn,
        description="In process unless the run config asks for multiprocess.",
    )


SYNC_EXECUTOR = _in_process_by_default()


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
        executor_def=SYNC_EXECUTOR,
        description="Monitor → App4Sales: download customers.xml, normalize it, upsert the changes"
                    + (" (one run per tenant partition)." if partitions_def else "."),
    )
