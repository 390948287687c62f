"""Assets ``customers``, ``customer_addresses``, ``customer_contacts``, ``customer_dashboards``:
customers.xml normalized by the SPEC §3 rules, with the checks a data engineer reads first."""

import tempfile
from pathlib import Path

import dagster as dg
import pandas as pd

from monitor_pipeline.customers import CustomersXmlError, NormalizeSettings, normalize_customers
from monitor_pipeline.resources.connector_settings import ConnectorSettings
from monitor_pipeline.assets.customers_xml import FTP_POOL
from monitor_pipeline.assets.frames_reuse import input_key, reusable_frames
from monitor_pipeline.lib.fetch import sha256_of
from monitor_pipeline.resources.file_transport import MonitorFileTransport
from monitor_pipeline.tenants import tenant_of
from monitor_pipeline.transport import RemoteNotFoundError

GROUP = "customer_sync"
FRAMES = {
    "customers": "One row per customer, App4Sales field names as columns.",
    "customer_addresses": "Invoice, delivery and visit addresses (inv/del/vis), with copies and main flags applied.",
    "customer_contacts": "Contact persons, with exactly one main contact per customer that has contacts.",
    "customer_dashboards": "Decoded Base64 customer dashboards (bytes), one row per customer that has one.",
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


def _preview(frame: pd.DataFrame, rows: int = 5) -> dg.MetadataValue:
    shown = frame.head(rows).drop(columns=["Dashboard"], errors="ignore")
    return dg.MetadataValue.md(shown.to_markdown(index=False) if len(shown) else "_empty_")


def _extra_data(monitor_ftp: MonitorFileTransport, settings: ConnectorSettings,
                log: dg.DagsterLogManager) -> bytes | None:
    remote = settings.extra_data_path()
    if remote is None:
        return None
    local = Path(tempfile.mkdtemp(prefix="extra-data-")) / "extraCustomerData.csv"
    with monitor_ftp.open() as transport:
        try:
            transport.download(remote, local)
        except RemoteNotFoundError:
            log.info(f"No {remote} on {transport.description}: no extra customer data this run")
            return None
    log.info(f"Read extra customer data from {remote} ({local.stat().st_size:,} bytes)")
    return local.read_bytes()


def build_customer_frames(partitions_def: dg.PartitionsDefinition | None = None) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name="customer_frames",
        outs={name: dg.AssetOut(group_name=GROUP, io_manager_key="monitor_storage", description=text,
                                kinds={"pandas", "parquet"})
              for name, text in FRAMES.items()},
        check_specs=CHECKS,
        can_subset=False,
        partitions_def=partitions_def,
        pool=FTP_POOL,
    )
    def customer_frames(context: dg.AssetExecutionContext, config: FramesConfig, customers_xml: Path,
                        monitor_ftp: MonitorFileTransport, connector_settings: ConnectorSettings):
        tenant = tenant_of(context)
        yield from normalize_frames(context, config, customers_xml, monitor_ftp.for_tenant(tenant),
                                    connector_settings.for_tenant(tenant))

    return customer_frames


class FramesConfig(dg.Config):
    reparse: bool = False
    """Parse customers.xml even when it, the extra data and the settings are unchanged since the last run."""


def normalize_frames(context: dg.AssetExecutionContext, config: FramesConfig, customers_xml: Path,
                     monitor_ftp: MonitorFileTransport, connector_settings: ConnectorSettings):
    settings = NormalizeSettings(
        language_map=connector_settings.language_map,
        default_action_price_list_code=connector_settings.default_action_price_list_code,
        customer_item_filter=connector_settings.customer_item_filter,
        extra_data=_extra_data(monitor_ftp, connector_settings, context.log),
    )
    key = input_key(sha256_of(customers_xml), settings)
    reused = None if config.reparse else reusable_frames(context, key)
    if reused is not None:
        yield from reused
        return
    try:
        result = normalize_customers(customers_xml, settings)
    except CustomersXmlError as exc:
        raise dg.Failure(description=f"customers.xml rejected, nothing will be sent to App4Sales: {exc}",
                         metadata={"file": str(customers_xml), "line": exc.line if exc.line is not None else -1},
                         allow_retries=False) from None
    for row in result.warnings.head(50).itertuples(index=False):
        context.log.warning(f"{row.CustomerCode}: {row.Field}: {row.Message}")
    if len(result.warnings) > 50:
        context.log.warning(f"… and {len(result.warnings) - 50} more warnings (see the 'warnings' metadata)")
    for row in result.rejected.itertuples(index=False):
        context.log.warning(f"Rejected customer #{row.Position} ({row.CustomerCode or 'no code'}): {row.Reason}")

    shared = {"rejected_customers": len(result.rejected), "warnings": len(result.warnings), "input_key": key,
              "reparsed": True}
    frames = {"customers": result.customers, "customer_addresses": result.addresses,
              "customer_contacts": result.contacts, "customer_dashboards": result.dashboards}
    for name, frame in frames.items():
        metadata = {"row_count": dg.MetadataValue.int(len(frame)), "preview": _preview(frame)}
        if name == "customers":
            metadata.update(shared)
            metadata["source_format"] = dg.MetadataValue.json(result.source_format)
            if len(result.rejected):
                metadata["rejected"] = _preview(result.rejected, 20)
            if len(result.warnings):
                metadata["warnings_preview"] = _preview(result.warnings, 20)
        yield dg.Output(frame, output_name=name, metadata=metadata)
    yield from frame_checks(result.customers, result.addresses, result.contacts, len(result.rejected))


def frame_checks(customers: pd.DataFrame, addresses: pd.DataFrame, contacts: pd.DataFrame, rejected: int):
    duplicated = customers["CustomerCode"][customers["CustomerCode"].duplicated()].unique().tolist()
    yield dg.AssetCheckResult(check_name="no_duplicate_customer_code", asset_key="customers",
                              passed=not duplicated, metadata={"duplicates": len(duplicated),
                                                               "examples": ", ".join(map(str, duplicated[:10]))})
    yield dg.AssetCheckResult(check_name="no_rejected_customers", asset_key="customers",
                              passed=rejected == 0, severity=dg.AssetCheckSeverity.WARN,
                              metadata={"rejected": rejected})
    mains = contacts["IsMainContactPerson"].fillna(False).astype(int).groupby(contacts["CustomerCode"]).sum()
    wrong = mains[mains != 1]
    yield dg.AssetCheckResult(check_name="one_main_contact", asset_key="customer_contacts", passed=wrong.empty,
                              metadata={"customers_with_contacts": len(mains), "violations": len(wrong),
                                        "examples": ", ".join(map(str, wrong.index[:10]))})
    missing = addresses[addresses["Country"].isna()]
    yield dg.AssetCheckResult(check_name="every_address_has_country", asset_key="customer_addresses",
                              passed=missing.empty, severity=dg.AssetCheckSeverity.WARN,
                              metadata={"addresses": len(addresses), "without_country": len(missing),
                                        "examples": ", ".join(map(str, missing["CustomerCode"].unique()[:10]))})
