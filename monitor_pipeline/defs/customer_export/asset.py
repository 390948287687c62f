"""Asset ``monitor_customer_files`` (group ``customer_export``): the customer files the export delivers to
Monitor's ``customers/`` folder, one materialization per delivered file (docs/export-asset.md).

Dagster does not compute this asset: it is declared with an ``AssetSpec`` and ``export_new_customer_job``
records its events, so every delivery is in the asset's history with the run that made it:

- an export that uploaded the file, or found exactly these bytes already there (a re-executed run), records
  an ``AssetMaterialization`` (:func:`delivered`), for the run's partition (its tenant) when partitioned;
- a try that failed records an ``AssetObservation`` (:func:`failed`) with the stage and the error: it says
  what went wrong, not that a file exists, so it never counts as a materialization.

The numeric entries (``delivered`` 1/0, ``bytes``, ``upload_attempts``, ``step_try``) are what the asset's
metadata plots (Overview → Metadata → Plots) draw over time; ``delivered`` is 1 on every materialization
and 0 on every observation.
"""

from __future__ import annotations

import dagster as dg

from monitor_pipeline.export import ExportError, ExportResult, remote_path_for

MONITOR_CUSTOMER_FILES = dg.AssetKey("monitor_customer_files")
GROUP = "customer_export"
KINDS = {"ftp", "xml"}

DESCRIPTION = (
    "The customer files delivered to Monitor's `customers/` folder, `customers/{CustomerCode}.xml`: one "
    "materialization per new App4Sales customer exported, recorded by export_new_customer_job (launched by "
    "new_customer_sensor), with the code, CustomerGuid, path, size, SHA-256 and the result posted to "
    "App4Sales. A failed export is an observation with its stage and error. Not materialized from here: "
    "the export runs once per customer from the sensor.")


def monitor_customer_files_spec(partitions_def: dg.PartitionsDefinition | None = None) -> dg.AssetSpec:
    """The asset, partitioned like ``export_new_customer_job`` (one partition per tenant) when there are
    tenants."""
    return dg.AssetSpec(
        MONITOR_CUSTOMER_FILES,
        group_name=GROUP,
        kinds=KINDS,
        description=DESCRIPTION + (" Partitioned by tenant, like the job." if partitions_def else ""),
        partitions_def=partitions_def,
        metadata={"folder": "customers/", "file_name": "{CustomerCode}.xml"},
    )


def delivered(result: ExportResult, *, partition: str | None, server: str, sequence: int,
              step_try: int) -> dg.AssetMaterialization:
    """The materialization of one delivered file (uploaded now, or the same bytes found already there)."""
    return dg.AssetMaterialization(
        asset_key=MONITOR_CUSTOMER_FILES,
        partition=partition,
        description=("Uploaded " if result.uploaded else "Already delivered (same bytes there, not uploaded "
                     "again): ") + f"{result.remote_path}, posted {result.message}",
        metadata={
            "customer_code": result.customer_code,
            "customer_guid": result.customer_guid,
            "remote_path": dg.MetadataValue.path(result.remote_path),
            "server": server,
            "bytes": result.bytes,
            "sha256": result.sha256,
            "message_posted": result.message,
            "delivered": 1,
            "uploaded": 1 if result.uploaded else 0,
            "already_delivered": not result.uploaded,
            "upload_attempts": result.attempts,
            "feed_sequence": sequence,
            "step_try": step_try,
        },
    )


def failed(*, guid: str, stage: str, error: str, partition: str | None, server: str, sequence: int,
           step_try: int, will_retry: bool, customer_code: str | None = None, posted: bool = False,
           file_in_place: bool = False) -> dg.AssetObservation:
    """The observation of a failed try: no file is claimed, except that a ``report`` failure (the file is
    there, App4Sales was not told) names the file it left in place (``file_in_place``)."""
    metadata: dict[str, object] = {
        "customer_guid": guid,
        "customer_code": customer_code or "",
        "stage": stage,
        "error": error,
        "server": server,
        "delivered": 0,
        "error_posted_to_app4sales": posted,
        "will_retry": will_retry,
        "feed_sequence": sequence,
        "step_try": step_try,
    }
    if file_in_place and customer_code:
        metadata["file_in_place"] = dg.MetadataValue.path(remote_path_for(customer_code))
    return dg.AssetObservation(asset_key=MONITOR_CUSTOMER_FILES, partition=partition,
                               description=f"Export failed ({stage})" + (", tried again" if will_retry else ""),
                               metadata=metadata)


def failed_export(exc: ExportError, **kw) -> dg.AssetObservation:
    """:func:`failed` for an :class:`ExportError`."""
    return failed(guid=exc.customer_guid, stage=exc.stage, error=exc.message, customer_code=exc.customer_code,
                  posted=exc.posted, file_in_place=exc.stage == "report", **kw)
