"""Assets ``customers``, ``customer_addresses``, ``customer_contacts``, ``customer_dashboards``,
``customer_rejections``:
customers.xml normalized by the SPEC §3 rules, with the checks a data engineer reads first.

Metadata stays small whatever the file holds (a 50 MB ``<customernote>``, 100k warnings): previews,
tables, check results and log lines come from ``frame_metadata``, which cuts values and rows and
keeps one materialization's metadata below 64 KiB.

A customers.xml or extraCustomerData.csv that cannot be used fails the step with a ``dg.Failure``
naming the file on the server (``sftp://user@host:22/base/…``, never a password) and the line.
"""

import tempfile
from pathlib import Path

import dagster as dg

from monitor_pipeline.app4sales.hash_cache import tag_frames
from monitor_pipeline.customers import CustomersXmlError, ExtraDataError, NormalizeSettings, normalize_customers
from monitor_pipeline.customers.settings import NormalizeOptions
from monitor_pipeline.resources.connector_settings import ConnectorSettings
from monitor_pipeline.defs.customer_sync.frame_metadata import frame_checks, log_rows, preview, table_entries
from monitor_pipeline.defs.customer_sync.frames_reuse import input_key, reusable_frames
from monitor_pipeline.transport.fetch import server_location, sha256_of
from monitor_pipeline.resources.file_transport import MonitorFileTransport
from monitor_pipeline.resources.storage import MonitorStorage, StoredFile
from monitor_pipeline.resources.tenancy import MonitorTenancy
from monitor_pipeline.transport import RemoteNotFoundError, TransportError

GROUP = "customer_sync"
FRAMES = {
    "customers": "One row per customer, App4Sales field names as columns.",
    "customer_addresses": "Invoice, delivery and visit addresses (inv/del/vis), with copies and main flags applied.",
    "customer_contacts": "Contact persons, with exactly one main contact per customer that has contacts.",
    "customer_dashboards": "Decoded Base64 customer dashboards (bytes), one row per customer that has one.",
    "customer_rejections": "Customers of customers.xml that were rejected (missing CustomerCode or CustomerName), "
                           "with position, line and reason. They are still in the file: the upsert never "
                           "deactivates their codes.",
}
CHECKS = [
    dg.AssetCheckSpec("no_duplicate_customer_code", asset="customers",
                      description="Every CustomerCode occurs once (duplicates in the file keep the last)."),
    dg.AssetCheckSpec("no_rejected_customers", asset="customers",
                      description="No customer was dropped for a missing CustomerCode or CustomerName."),
    dg.AssetCheckSpec("one_main_contact", asset="customer_contacts",
                      description="Every customer with contacts has exactly one main contact."),
    dg.AssetCheckSpec("every_address_has_country", asset="customer_addresses",
                      description="Country resolved for every address (own, customer's, or from the language)."),
]


def _extra_data(monitor_ftp: MonitorFileTransport, settings: ConnectorSettings,
                log: dg.DagsterLogManager) -> bytes | None:
    """extraCustomerData.csv's bytes, None when there is none; the temp copy is gone on return."""
    remote = settings.extra_data_path()
    if remote is None:
        return None
    with tempfile.TemporaryDirectory(prefix="extra-data-") as folder:
        local = Path(folder) / "extraCustomerData.csv"
        try:
            with monitor_ftp.open() as transport:
                try:
                    transport.download(remote, local)
                except RemoteNotFoundError:
                    log.info(f"No {remote} on {transport.description}: no extra customer data this run")
                    return None
        except TransportError as exc:
            raise dg.Failure(description=f"extraCustomerData.csv could not be downloaded: {exc}",
                             allow_retries=exc.transient) from None
        data = local.read_bytes()
    log.info(f"Read extra customer data from {server_location(monitor_ftp.transport_config(), remote)} "
             f"({len(data):,} bytes)")
    return data


def _rejected_file(what: str, monitor_ftp: MonitorFileTransport, remote: str, line: int | None, problem: str,
                   **metadata) -> dg.Failure:
    """The Failure for a file that cannot be used (SPEC §4): it names the server, the path and the line."""
    config = monitor_ftp.transport_config()
    where = server_location(config, remote) + (f", line {line}" if line else "")
    return dg.Failure(
        description=f"{what} rejected, nothing will be sent to App4Sales: {where}: {problem}",
        metadata={"server": config.describe(), "path": remote, "line": line if line else -1, **metadata},
        allow_retries=False)


def build_customer_frames(partitions_def: dg.PartitionsDefinition | None = None,
                          retry_policy: dg.RetryPolicy | None = None) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name="customer_frames",
        outs={name: dg.AssetOut(group_name=GROUP, io_manager_key="monitor_storage", description=text,
                                kinds={"pandas", "parquet"})
              for name, text in FRAMES.items()},
        check_specs=CHECKS,
        can_subset=False,
        partitions_def=partitions_def,
        retry_policy=retry_policy,
    )
    def customer_frames(context: dg.AssetExecutionContext, config: FramesConfig, customers_xml: StoredFile,
                        tenancy: dg.ResourceParam[MonitorTenancy], monitor_storage: dg.ResourceParam[MonitorStorage]):
        tenant = tenancy.for_context(context)
        # The file is parsed (or its frames reused) before the first output is stored: the temp copy of an
        # object store's file is gone before a failure to store an output could leave the step unfinished.
        with customers_xml.local_path() as local:
            results = list(normalize_frames(context, config, local, tenant.monitor_ftp, tenant.settings,
                                            storage=monitor_storage, stored_at=customers_xml.location))
        yield from results

    return customer_frames


class FramesConfig(dg.Config):
    reparse: bool = False
    """Parse customers.xml even when it, the extra data and the settings are unchanged since the last run."""


def normalize_frames(context: dg.AssetExecutionContext, config: FramesConfig, customers_xml: Path,
                     monitor_ftp: MonitorFileTransport, connector_settings: ConnectorSettings, *,
                     storage: MonitorStorage, stored_at: str):
    """``customers_xml`` is a local copy of the stored file ``stored_at`` (its path or URL)."""
    settings = NormalizeSettings(**connector_settings.values(NormalizeOptions),
                                 extra_data=_extra_data(monitor_ftp, connector_settings, context.log))
    key = input_key(sha256_of(customers_xml), settings)
    reused = None if config.reparse else reusable_frames(context, key, storage)
    if reused is not None:
        yield from reused
        return
    try:
        result = normalize_customers(customers_xml, settings)
    except CustomersXmlError as exc:
        raise _rejected_file("customers.xml", monitor_ftp, connector_settings.customers_xml_path(), exc.line,
                             exc.problem, local_copy=stored_at) from None
    except ExtraDataError as exc:
        raise _rejected_file("extraCustomerData.csv", monitor_ftp, connector_settings.extra_data_path() or "",
                             getattr(exc, "line", None), getattr(exc, "problem", str(exc))) from None
    log_rows(context, result.warnings, result.rejected)

    shared = {"rejected_customers": len(result.rejected), "warnings": len(result.warnings), "input_key": key,
              "reparsed": True}
    frames = {"customers": result.customers, "customer_addresses": result.addresses,
              "customer_contacts": result.contacts, "customer_dashboards": result.dashboards,
              "customer_rejections": result.rejected}
    tag_frames(frames.values(), key)  # stored with each Parquet file: the upsert's payload hash cache key
    for name, frame in frames.items():
        metadata = {"row_count": dg.MetadataValue.int(len(frame)), **preview(frame)}
        if name == "customers":
            metadata.update(shared)
            metadata["source_format"] = dg.MetadataValue.json(result.source_format)
            if len(result.rejected):
                metadata.update(table_entries("rejected", result.rejected))
            if len(result.warnings):
                metadata.update(table_entries("warnings_preview", result.warnings))
        yield dg.Output(frame, output_name=name, metadata=metadata)
    yield from frame_checks(result.customers, result.addresses, result.contacts, result.rejected)
