"""The code location: ``dagster dev -w workspace.yaml`` (or ``-m monitor_pipeline.definitions``)."""

import dagster as dg

from monitor_pipeline.assets import build_customer_sync_assets
from monitor_pipeline.jobs import build_customer_sync_job
from monitor_pipeline.jobs.export_new_customer import export_new_customer_job
from monitor_pipeline.lib.env import env_int
from monitor_pipeline.resources import build_resources
from monitor_pipeline.schedules import build_customer_sync_schedule
from monitor_pipeline.sensors.customers_xml_sensor import build_customers_xml_sensor
from monitor_pipeline.sensors.new_customer_sensor import new_customer_sensor_from_env
from monitor_pipeline.tenants import load_tenants, tenants_file


def build_defs() -> dg.Definitions:
    """Definitions from the current environment (SPEC §2); a bad setting fails here, naming the variable.

    With ``MONITOR_TENANTS_FILE`` every customer-sync asset is partitioned by tenant; without it
    nothing is partitioned and one tenant comes from the SPEC §2 variables.
    """
    path = tenants_file()
    tenants = load_tenants(path) if path else None
    partitions = dg.StaticPartitionsDefinition(list(tenants)) if tenants else None
    schedule = build_customer_sync_schedule(tenants)
    resources = build_resources()
    return dg.Definitions(
        assets=build_customer_sync_assets(partitions),
        jobs=[build_customer_sync_job(partitions, tenants, app4sales_url=resources["app4sales"].url),
              export_new_customer_job],
        sensors=[
            build_customers_xml_sensor(tenants, minimum_interval_seconds=env_int("MONITOR_FILE_SENSOR_SECONDS", 60, low=1)),
            new_customer_sensor_from_env(tenants=tenants),
        ],
        schedules=[schedule] if schedule else [],
        resources=resources,
    )


defs = build_defs()
