"""Asset ``customers_xml``: Monitor's customer export, downloaded once it has stopped changing."""

import tempfile
from pathlib import Path

import dagster as dg

from monitor_pipeline.lib.fetch import FileStillBeingWritten, download_when_stable
from monitor_pipeline.resources.connector_settings import ConnectorSettings
from monitor_pipeline.resources.file_transport import MonitorFileTransport
from monitor_pipeline.tenants import tenant_of
from monitor_pipeline.transport import TransportError

GROUP = "customer_sync"
FTP_POOL = "monitor_ftp"


def build_customers_xml(partitions_def: dg.PartitionsDefinition | None = None) -> dg.AssetsDefinition:
    @dg.asset(
        name="customers_xml",
        group_name=GROUP,
        kinds={"xml", "ftp"},
        io_manager_key="monitor_storage",
        partitions_def=partitions_def,
        pool=FTP_POOL,
        description="customers.xml from MONITOR_FTP_URL / MONITOR_CUSTOMERS_FOLDER, byte for byte, once it has "
                    "stopped changing.",
    )
    def customers_xml(context: dg.AssetExecutionContext, monitor_ftp: MonitorFileTransport,
                      connector_settings: ConnectorSettings) -> dg.Output[Path]:
        tenant = tenant_of(context)
        return fetch_customers_xml(context, monitor_ftp.for_tenant(tenant), connector_settings.for_tenant(tenant))

    return customers_xml


def fetch_customers_xml(context: dg.AssetExecutionContext, monitor_ftp: MonitorFileTransport,
                        connector_settings: ConnectorSettings) -> dg.Output[Path]:
    remote = connector_settings.customers_xml_path()
    local = Path(tempfile.mkdtemp(prefix="customers_xml-")) / "customers.xml"
    try:
        with monitor_ftp.open() as transport:
            context.log.info(f"Downloading {remote} from {transport.description}")
            fetched = download_when_stable(transport, remote, local,
                                           stability_seconds=connector_settings.stability_seconds)
    except (FileStillBeingWritten, TransportError) as exc:
        raise dg.Failure(description=str(exc), allow_retries=getattr(exc, "transient", False)) from None
    context.log.info(f"Downloaded {fetched.size:,} bytes, sha256 {fetched.sha256[:12]}…")
    return dg.Output(
        fetched.path,
        metadata={
            "source": monitor_ftp.description + "/" + remote,
            "size_bytes": fetched.size,
            "server_mtime": dg.MetadataValue.timestamp(fetched.mtime),
            "sha256": fetched.sha256,
        },
    )
