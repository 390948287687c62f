"""Sensor ``customers_xml_sensor``: one ``customer_sync_job`` run per new, settled version of customers.xml."""

from __future__ import annotations

import json

import dagster as dg

from monitor_pipeline.resources.connector_settings import ConnectorSettings
from monitor_pipeline.resources.file_transport import MonitorFileTransport
from monitor_pipeline.transport import RemoteNotFoundError, TransportError


def version_of(size: int, mtime) -> str:
    return f"{mtime.isoformat()}|{size}"


def decide(cursor: dict, seen: str) -> tuple[bool, dict]:
    """Request a run when ``seen`` equals the version seen on the previous tick and was not requested yet."""
    settled = cursor.get("candidate") == seen
    if settled and cursor.get("requested") != seen:
        return True, {"candidate": seen, "requested": seen}
    return False, {**cursor, "candidate": seen}


def build_customers_xml_sensor(minimum_interval_seconds: int = 60,
                               default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING):
    @dg.sensor(
        name="customers_xml_sensor",
        job_name="customer_sync_job",
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="Watches customers.xml (size and mtime); once a new version is the same on two ticks in a row, "
                    "requests customer_sync_job (run key: name, mtime, size).",
    )
    def customers_xml_sensor(context: dg.SensorEvaluationContext, monitor_ftp: MonitorFileTransport,
                             connector_settings: ConnectorSettings):
        cursor = json.loads(context.cursor) if context.cursor else {}
        remote = connector_settings.customers_xml_path()
        try:
            with monitor_ftp.open() as transport:
                stat = transport.stat(remote)
        except RemoteNotFoundError as exc:
            return dg.SkipReason(f"No customers.xml yet: {exc}")
        except TransportError as exc:
            if exc.transient:
                return dg.SkipReason(f"Monitor's server is not reachable right now, trying again next tick: {exc}")
            raise
        seen = version_of(stat.size, stat.mtime)
        request, new_cursor = decide(cursor, seen)
        if not request:
            reason = ("already synced" if new_cursor.get("requested") == seen
                      else "new version seen; waiting one more tick to be sure it is no longer being written")
            return dg.SensorResult(skip_reason=dg.SkipReason(f"{remote} {seen}: {reason}"),
                                   cursor=json.dumps(new_cursor))
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"customers.xml|{seen}",
                                        tags={"monitor_pipeline/customers_xml_version": seen})],
            cursor=json.dumps(new_cursor),
        )

    return customers_xml_sensor
