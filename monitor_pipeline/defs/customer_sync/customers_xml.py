"""Asset ``customers_xml``: Monitor's customer export, downloaded once it has stopped changing.

The download lands in a ``customers_xml-*`` folder under the system temp folder, which is removed
when the step ends, whether it succeeded or failed: the storage moves (or uploads) the file when it
stores the output and removes the folder right after that, also when storing fails.
"""

import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg

from monitor_pipeline.transport.fetch import download_when_stable, server_location
from monitor_pipeline.resources.connector_settings import ConnectorSettings
from monitor_pipeline.resources.file_transport import MonitorFileTransport
from monitor_pipeline.resources.storage import DownloadedFile
from monitor_pipeline.resources.tenancy import MonitorTenancy
from monitor_pipeline.transport import TransportError

GROUP = "customer_sync"


def build_customers_xml(partitions_def: dg.PartitionsDefinition | None = None,
                        retry_policy: dg.RetryPolicy | None = None) -> dg.AssetsDefinition:
    @dg.asset(
        name="customers_xml",
        group_name=GROUP,
        kinds={"xml", "ftp"},
        io_manager_key="monitor_storage",
        partitions_def=partitions_def,
        retry_policy=retry_policy,
        description="customers.xml from MONITOR_FTP_URL / MONITOR_CUSTOMERS_FOLDER, byte for byte, once it has "
                    "stopped changing.",
    )
    def customers_xml(context: dg.AssetExecutionContext, tenancy: dg.ResourceParam[MonitorTenancy]):
        tenant = tenancy.for_context(context)
        yield from fetch_customers_xml(context, tenant.monitor_ftp, tenant.settings)

    return customers_xml


def fetch_customers_xml(context: dg.AssetExecutionContext, monitor_ftp: MonitorFileTransport,
                        connector_settings: ConnectorSettings) -> Iterator[dg.Output[DownloadedFile]]:
    """Yields the one output while the temp folder still exists: Dagster stores an output (the storage
    takes the file and removes its folder) before it resumes the generator. On a failure of the download
    the folder goes when the exception leaves the ``with``."""
    remote = connector_settings.customers_xml_path()
    with tempfile.TemporaryDirectory(prefix="customers_xml-", ignore_cleanup_errors=True) as folder:
        local = Path(folder) / "customers.xml"
        try:
            with monitor_ftp.open() as transport:
                context.log.info(f"Downloading {remote} from {transport.description}")
                fetched = download_when_stable(transport, remote, local,
                                               stability_seconds=connector_settings.stability_seconds)
        except TransportError as exc:  # FileStillBeingWritten included
            raise dg.Failure(description=str(exc), allow_retries=exc.transient) from None
        context.log.info(f"Downloaded {fetched.size:,} bytes, sha256 {fetched.sha256[:12]}…")
        yield dg.Output(
            DownloadedFile(fetched.path),
            metadata={
                "source": server_location(monitor_ftp.transport_config(), remote),
                "size_bytes": fetched.size,
                "server_mtime": dg.MetadataValue.timestamp(fetched.mtime),
                "sha256": fetched.sha256,
            },
        )
