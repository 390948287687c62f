"""Jobs: the customer sync (assets) and the customer export (ops)."""

import dagster as dg

customer_sync_job = dg.define_asset_job(
    "customer_sync_job",
    selection=dg.AssetSelection.groups("customer_sync"),
    description="Monitor → App4Sales: download customers.xml, normalize it, upsert the changes.",
)
