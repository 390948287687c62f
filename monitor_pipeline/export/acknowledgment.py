"""Did Monitor create the customers the export delivered? (the gap the export's seed names itself: "It does
not get a confirmation back from the ERP system about whether the customer was successfully created").

Monitor answers nothing to an export, but it shows what it did: a customer it created is in the next
customers.xml, and a file it imported is usually gone from ``customers/``. So the export records every
delivered customer in the state of its administration (:meth:`SyncState.record_export
<monitor_pipeline.app4sales.state.SyncState.record_export>`: code, GUID, file, time), and every later sync
compares (:func:`acknowledge`, the check ``exported_customers_arrived`` of
:mod:`monitor_pipeline.defs.customer_sync.export_acknowledgment`):

- *arrived*: the code is in customers.xml (the time of the first sync that saw it is kept);
- *taken by Monitor*: the file is gone from ``customers/`` (idem; unknown when the folder could not be listed);
- *pending*: not arrived yet, exported at most ``MONITOR_EXPORT_ACK_HOURS`` ago;
- *overdue*: not arrived, exported longer ago than that: the check fails (severity warn) naming every one.

Plain Python, no Dagster.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from monitor_pipeline.app4sales.state import ExportRecord
from monitor_pipeline.app4sales.state_store import open_state, peek_state

ARRIVED, PENDING, OVERDUE = "arrived", "pending", "overdue"


@dataclass(frozen=True)
class AckRow:
    """One exported customer as the sync sees it now."""

    code: str
    guid: str
    file: str
    exported_at: datetime
    age_hours: float
    status: str  # arrived, pending or overdue
    taken: bool | None  # the file is gone from customers/; None: the folder could not be listed


@dataclass
class Acknowledgment:
    rows: list[AckRow]
    ack_hours: float
    newly_arrived: list[str] = field(default_factory=list)  # to note in the state
    newly_taken: list[str] = field(default_factory=list)
    listing_error: str | None = None  # why customers/ could not be listed (taken is then unknown)

    def count(self, status: str) -> int:
        return sum(row.status == status for row in self.rows)

    @property
    def overdue(self) -> list[AckRow]:
        return [row for row in self.rows if row.status == OVERDUE]

    @property
    def taken(self) -> int:
        return sum(bool(row.taken) for row in self.rows)


def acknowledge(records: Iterable[ExportRecord], present_codes: Iterable[str], folder_names: Iterable[str] | None,
                *, now: datetime, ack_hours: float) -> Acknowledgment:
    """What the state's export ``records`` look like against the codes of customers.xml (``present_codes``) and
    the names in ``customers/`` (``folder_names``; None when it could not be listed, an empty list when the folder
    does not exist). A code or a taken file noted by an earlier sync stays so."""
    present = set(present_codes)
    names = None if folder_names is None else set(folder_names)
    rows, newly_arrived, newly_taken = [], [], []
    for record in records:
        arrived = record.arrived_at is not None or record.code in present
        if record.arrived_at is None and arrived:
            newly_arrived.append(record.code)
        if record.taken_at is not None:
            taken: bool | None = True
        elif names is None:
            taken = None
        else:
            taken = record.file.rsplit("/", 1)[-1] not in names
            if taken:
                newly_taken.append(record.code)
        age = max(0.0, (now - record.exported_at).total_seconds() / 3600)
        status = ARRIVED if arrived else (OVERDUE if age > ack_hours else PENDING)
        rows.append(AckRow(record.code, record.guid, record.file, record.exported_at, round(age, 2), status, taken))
    order = {OVERDUE: 0, PENDING: 1, ARRIVED: 2}
    rows.sort(key=lambda r: (order[r.status], -r.age_hours, r.code))
    return Acknowledgment(rows, ack_hours, newly_arrived, newly_taken)


def record_delivery(location: str | Path, administration: str, tenant: str | None, *, code: str, guid: str,
                    file: str, sha256: str = "") -> None:
    """Record one delivered customer in the state of its administration (the sync's state location)."""
    with open_state(location, administration, tenant) as state:
        state.record_export(code, guid, file, sha256)


def was_delivered(location: str | Path, administration: str, tenant: str | None, *, code: str,
                  sha256: str) -> bool:
    """Whether a delivery of exactly these bytes (``sha256``) under ``code`` was recorded (an earlier try)."""
    return any(r.code == code and r.sha256 == sha256 for r in recorded_exports(location, administration, tenant))


def recorded_exports(location: str | Path, administration: str, tenant: str | None) -> list[ExportRecord]:
    """The exports recorded for the administration; none (and no state file made) when there is no state yet."""
    with peek_state(location, administration, tenant) as state:
        return [] if state is None else state.exports()


def note_acknowledgment(location: str | Path, administration: str, tenant: str | None, ack: Acknowledgment) -> None:
    """Keep what this sync saw (first arrival, file taken) so that later syncs need not see it again."""
    if ack.newly_arrived or ack.newly_taken:
        with open_state(location, administration, tenant) as state:
            state.note_exports(ack.newly_arrived, ack.newly_taken)
