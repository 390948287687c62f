"""Check ``exported_customers_arrived`` on ``customers``: did Monitor create the customers we exported?

Each export records the delivered customer in the state of its administration
(:mod:`monitor_pipeline.export.acknowledgment`). After every sync's ``customers`` this check compares those
records with the CustomerCodes of the new customers.xml (rejected customers included: they are in the file)
and with what is left in Monitor's ``customers/`` folder, notes in the state what it saw for the first time,
and fails (severity warn) naming every customer exported more than ``MONITOR_EXPORT_ACK_HOURS`` (default
24 h, per tenant) ago that customers.xml still lacks. Its metadata: exports, pending, taken_by_monitor,
arrived, arrived_this_sync, overdue (plotted over time), the window, and a table of the overdue ones.

It sends nothing to App4Sales; in a dry run it still notes arrivals (facts about Monitor, not the sync's).
With no export recorded it passes without reading anything.
"""

# No ``from __future__ import annotations``: Dagster reads the check's annotations at decoration time.
from datetime import datetime, timezone

import dagster as dg

from monitor_pipeline.export.acknowledgment import (Acknowledgment, AckRow, acknowledge, note_acknowledgment,
                                                    recorded_exports)
from monitor_pipeline.export.export_customer import EXPORT_FOLDER, folder_listing
from monitor_pipeline.export.settings import ExportSettings
from monitor_pipeline.lib.settings import variable_of
from monitor_pipeline.resources.file_transport import MonitorFileTransport
from monitor_pipeline.resources.storage import FRAME_SUFFIX, MonitorStorage
from monitor_pipeline.resources.tenancy import MonitorTenancy, tenant_of
from monitor_pipeline.transport import TransportError

CHECK_NAME = "exported_customers_arrived"
CUSTOMERS = dg.AssetKey("customers")
TABLE_ROWS = 200
DETAILED = 20  # overdue customers described with their export time in the description; then their codes only
CODES_BUDGET = 8000  # characters of further codes in the description (one event's metadata stays under 64 KiB)
HOURS = variable_of(ExportSettings, "export_ack_hours")

OVERDUE_TABLE = dg.TableSchema(columns=[
    dg.TableColumn("CustomerCode", "string"),
    dg.TableColumn("CustomerGuid", "string"),
    dg.TableColumn("file", "string", description="what the export delivered, under Monitor's base folder"),
    dg.TableColumn("exported_at_utc", "string"),
    dg.TableColumn("age_hours", "float"),
    dg.TableColumn("file_taken", "string", description="gone from customers/ (Monitor took it): yes, no, unknown"),
])


def folder_names(monitor_ftp: MonitorFileTransport) -> tuple[list[str] | None, str | None]:
    """The names in Monitor's ``customers/`` (empty when it does not exist), or ``(None, why)``."""
    try:
        with monitor_ftp.open() as transport:
            return folder_listing(transport, EXPORT_FOLDER), None
    except TransportError as exc:
        return None, str(exc)


def present_codes(storage: MonitorStorage, partition: str | None) -> set[str]:
    """The CustomerCodes of the last stored ``customers`` and ``customer_rejections`` (only that column)."""
    codes: set[str] = set()
    for asset in ("customers", "customer_rejections"):
        frame = storage.read_frame(storage.path_for([asset], FRAME_SUFFIX, partition), columns=["CustomerCode"])
        values = frame["CustomerCode"].dropna().astype(str)
        codes.update(values[values != ""])
    return codes


def _more_codes(codes: list[str]) -> str:
    """``; also: A, B, …`` within :data:`CODES_BUDGET` characters, then how many more (the event stays small)."""
    if not codes:
        return ""
    shown, size = [], 0
    for code in codes:
        size += len(code) + 2
        if size > CODES_BUDGET:
            break
        shown.append(code)
    rest = len(codes) - len(shown)
    return "; also " + ", ".join(shown) + (f" and {rest} more (every overdue customer: the state's exports)"
                                           if rest else "")


def _taken(row: AckRow) -> str:
    return "unknown" if row.taken is None else ("yes" if row.taken else "no")


def _when(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="seconds")


def ack_result(ack: Acknowledgment, note_error: str | None = None) -> dg.AssetCheckResult:
    overdue = ack.overdue
    pending, arrived = ack.count("pending"), ack.count("arrived")
    if overdue:
        detailed = ", ".join(f"{r.code} (exported {_when(r.exported_at)}, {r.age_hours:g} h ago, file "
                             + {"yes": "taken by Monitor", "no": f"still in {EXPORT_FOLDER}/",
                                "unknown": "unknown"}[_taken(r)] + ")" for r in overdue[:DETAILED])
        description = (f"{len(overdue)} exported customer(s) still missing from customers.xml more than "
                       f"{ack.ack_hours:g} h ({HOURS}) after the export: {detailed}"
                       + _more_codes([r.code for r in overdue[DETAILED:]]))
    else:
        description = (f"every exported customer arrived in customers.xml or is within {ack.ack_hours:g} h "
                       f"({HOURS}): {arrived} arrived, {pending} pending" if ack.rows else "no export recorded")
    if ack.listing_error:
        description += f". {EXPORT_FOLDER}/ could not be listed, so whether Monitor took the files is unknown: " \
                       f"{ack.listing_error}"
    if note_error:
        description += f". What this sync saw could not be noted in the state (the next sync sees it again): " \
                       f"{note_error}"
    table = [dg.TableRecord({"CustomerCode": r.code, "CustomerGuid": r.guid, "file": r.file,
                             "exported_at_utc": _when(r.exported_at), "age_hours": r.age_hours,
                             "file_taken": _taken(r)}) for r in overdue[:TABLE_ROWS]]
    return dg.AssetCheckResult(
        check_name=CHECK_NAME,
        asset_key=CUSTOMERS,
        passed=not overdue,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "exports": len(ack.rows),
            "pending": pending,
            "taken_by_monitor": ack.taken,
            "arrived": arrived,
            "arrived_this_sync": len(ack.newly_arrived),
            "overdue": len(overdue),
            "window": f"{ack.ack_hours:g} h ({HOURS})",  # text: a constant is no plot
            "overdue_customers": dg.MetadataValue.table(table, schema=OVERDUE_TABLE),
        },
    )


def build_exported_customers_arrived() -> dg.AssetChecksDefinition:
    """The check. Not partitioned itself (partitioned checks are a preview in Dagster 1.13): evaluated in a
    tenant's run, it works for the run's partition, the tenant."""
    @dg.asset_check(
        asset=CUSTOMERS,
        name=CHECK_NAME,
        blocking=False,
        description=f"Every customer the export delivered to Monitor is in customers.xml within {HOURS} (default "
                    "24 h) of its export: Monitor created it. Warns naming every overdue one; the metadata "
                    "counts pending, taken by Monitor (the file gone from customers/), arrived and overdue.",
    )
    def exported_customers_arrived(context: dg.AssetCheckExecutionContext,
                                   tenancy: dg.ResourceParam[MonitorTenancy],
                                   monitor_storage: dg.ResourceParam[MonitorStorage]) -> dg.AssetCheckResult:
        tenant = tenancy.for_context(context)
        settings = tenant.settings
        where = (settings.state_url or settings.state_dir, tenant.app4sales.administration, settings.state_tenant)
        now = datetime.now(timezone.utc)
        records = recorded_exports(*where)
        if not records:
            return ack_result(acknowledge([], (), [], now=now, ack_hours=settings.export_ack_hours))
        names, listing_error = folder_names(tenant.monitor_ftp)
        ack = acknowledge(records, present_codes(monitor_storage, tenant_of(context)), names, now=now,
                          ack_hours=settings.export_ack_hours)
        ack.listing_error = listing_error
        note_error = None
        try:
            note_acknowledgment(*where, ack)
        except Exception as exc:  # noqa: BLE001 - nothing is lost: the next sync sees the same again
            note_error = str(exc)
            context.log.warning(f"could not note the exports' acknowledgment in the state: {exc}")
        for row in ack.rows:
            if row.code in ack.newly_arrived:
                context.log.info(f"Exported customer {row.code} arrived in customers.xml "
                                 f"({row.age_hours:g} h after its export)")
        return ack_result(ack, note_error)

    return exported_customers_arrived
