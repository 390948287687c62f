"""Assets of the customer sync: raw export → frames → App4Sales."""

from monitor_pipeline.assets.customer_frames import customer_frames
from monitor_pipeline.assets.customers_xml import customers_xml
from monitor_pipeline.assets.upsert import customer_upsert_batches

customer_sync_assets = [customers_xml, customer_frames, customer_upsert_batches]
