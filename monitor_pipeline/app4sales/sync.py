"""Customer sync Monitor → App4Sales: plan what to send, send it in batches, remember what was confirmed.

SPEC §5. Pure Python (no Dagster); the asset calls :func:`run_sync` with the normalized frames.

Run order (:func:`run_sync`):

0. The administration's lock (:meth:`SyncState.lock`, SPEC §5 "one writer per administration") is taken
   before anything is read, and held until the run ends: a second run waits up to ``lock_timeout``
   seconds, then fails with :class:`SyncLockedError` naming the holder, having sent nothing. So the index,
   the state and the plan of a run are never those of another run half-way. The state and its lock are
   the SQLite files of the state folder, or PostgreSQL's with ``MONITOR_STATE_URL`` (:mod:`.state_store`).
1. ``client.list_customers()`` once (the index: code, GUID, enabled); ``client.price_lists()`` only
   with price deduplication on — read while :func:`prepare_frames` turns the frames into columns and
   encodes everything of the hashes that the index and the price lists do not decide.
2. :func:`plan_sync`: resolved GUIDs, deduplicated price lists, hashes, the payloads to send (a
   :class:`PayloadList`: each batch's payloads are built by the thread that sends it); a customer is sent
   when it is *new* (not in the index), *inactive* in App4Sales (sent → reactivated), *changed* (its
   hash differs from the state of the last confirmed sync, or the state has no row for it), or every
   customer with ``full_refresh``.
3. Deactivation guard (:func:`check_deactivation`) BEFORE anything is sent: with
   ``deactivate_missing``, when more than ``deactivate_max_fraction`` of the active App4Sales customers
   are absent from the file, :class:`DeactivationRefusedError` — no script, no batch, no deactivation.
   "Absent" means the code is nowhere in customers.xml: a customer normalization rejected (say, for an
   empty name) is present (``present_codes``) and is never deactivated; numerator and denominator
   count active App4Sales customers only. Then the change log (:func:`plan_changes`, :mod:`.changes`: each
   customer to send against the payload the state kept for it) and the mass-change guard
   (:func:`check_mass_change`): when more than ``max_change_fraction`` of the customers already in
   App4Sales would be updated, :class:`MassChangeRefusedError` naming the fields changed most — nothing sent
   — unless ``approve_mass_change``.
4. ``BeforeUpdateCustomers``, batches of ``batch_size``, then ``deactivate_customers``, then
   ``UpdateCustomers``. Up to ``upsert_concurrency`` batches are in flight at once (:func:`_send_batches`):
   the first is sent only after ``BeforeUpdateCustomers`` has answered, ``UpdateCustomers`` runs only
   after the last has been answered; the client's adaptive window (:mod:`.window`) lowers the number in
   flight while App4Sales answers 429/503. **Scripts run only when the run writes customers** — at least one customer to
   send or one to deactivate. A run with nothing to do (or only dashboards to resend) runs no script:
   the scripts bracket customer updates, and an idle scheduled run must not trigger App4Sales-side work.
   A script the administration does not have (``run_script`` → False) is logged and skipped.
5. **Confirmed means named in the answer** (:func:`confirmed_results`): after each batch, only the
   customers whose CustomerCode the answer's ``results`` lists with status created, updated or
   reactivated have their hash, the payload as sent (packed) and the GUID App4Sales answered recorded;
   only their rows go into ``SyncResult.changes``; then their changed
   dashboards are PUT and their digests stored. A customer the answer does not name, names with another
   status, or names in a malformed entry is *unconfirmed*: nothing recorded, reported in
   ``SyncResult.unconfirmed``, sent again by the next run. Entries naming codes that were not sent are
   logged and ignored. An answer that is not the contract's shape at all stops the run
   (``App4SalesProtocolError`` from the client). Dashboards that still need sending for
   customers not sent this run (e.g. a previous run stopped between batch and dashboard) go after the
   last batch.

A 400 ``BatchRejectedError`` splits the batch: the customers it names are recorded as failed with
their messages, the rest of the batch is sent again (when the rejection names no customer of the batch,
its customers are sent one by one). Any other App4Sales error (the client has already retried transient
ones) stops the run with :class:`SyncInterruptedError`: no new batch is sent, the batches in flight are
waited for and what they confirmed is recorded; the state keeps every confirmed batch, so a re-run sends
exactly what was not confirmed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from typing import Protocol
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from monitor_pipeline.app4sales.changes import (customer_changes, field_counts, changes_frame, folded_field, pack,
                                                unpack)
from monitor_pipeline.app4sales.errors import App4SalesError, BatchRejectedError
from monitor_pipeline.app4sales.hash_cache import HashCache, frames_key
from monitor_pipeline.app4sales.payload import (
    CustomerTable,
    _column,
    build_payloads,
    dashboard_digest,
    deduplicate_price_column,
    gc_frozen,
    gc_paused,
    generated_guid,
    payload_hash,
    resolve_guid,
    resolve_guid_column,
)
from monitor_pipeline.app4sales.state import StateLockedError, StateLockLostError, SyncState
from monitor_pipeline.app4sales.state_postgres import StateStoreError
from monitor_pipeline.app4sales.state_store import AnyState, open_state, peek_state
from monitor_pipeline.app4sales.settings import SyncSettings
from monitor_pipeline.errors import PipelineError
from monitor_pipeline.lib.log_relay import LogRelay

__all__ = [
    "BEFORE_SCRIPT", "AFTER_SCRIPT", "SyncSettings", "SyncState", "SyncPlan", "SyncResult", "SyncError",
    "DeactivationRefusedError", "SyncInterruptedError", "SyncLockedError", "SyncStateError", "confirmed_results", "build_payloads", "payload_hash", "resolve_guid",
    "generated_guid", "PreparedFrames", "prepare_frames", "plan_sync", "SyncClient", "check_deactivation", "run_sync",
    "SyncPreview", "preview_sync", "MassChangeRefusedError", "check_mass_change", "plan_changes",
]

BEFORE_SCRIPT = "BeforeUpdateCustomers"
AFTER_SCRIPT = "UpdateCustomers"

ProgressCallback = Callable[[int, int, int, int], None]
PROGRESS_SECONDS = 5.0


class SyncClient(Protocol):
    """What the sync needs of App4Sales: ``App4SalesClient`` over HTTP, or a test double. An optional
    ``request_count`` attribute lets the result count the HTTP requests of the run."""

    administration: str

    def list_customers(self, expected: int = 0) -> list[dict]: ...
    def price_lists(self) -> list[dict]: ...
    def upsert_customers(self, customers: list[dict]) -> list: ...
    def deactivate_customers(self, codes: list[str]) -> int: ...
    def put_dashboard(self, code: str, data: bytes) -> None: ...
    def run_script(self, name: str) -> bool: ...


class SyncError(PipelineError):
    """A sync run could not complete."""


class DeactivationRefusedError(SyncError):
    """More active App4Sales customers would be deactivated than ``deactivate_max_fraction`` allows."""

    def __init__(self, would_deactivate: int, active: int, max_fraction: float):
        self.would_deactivate, self.active, self.max_fraction = would_deactivate, active, max_fraction
        self.fraction = would_deactivate / active if active else 0.0
        super().__init__(
            f"refusing to deactivate {would_deactivate} of {active} active App4Sales customers "
            f"({self.fraction:.1%}) absent from customers.xml: more than MONITOR_DEACTIVATE_MAX_FRACTION="
            f"{max_fraction:g} ({max_fraction:.1%}); nothing was sent or deactivated. Is the export truncated?")


def _cut(value, limit: int = 200):
    """A value quoted in a message, cut to ``limit`` characters plus ``…`` (a 1 MB note stays out of it)."""
    return value if not isinstance(value, str) or len(value) <= limit else value[:limit] + "…"


class MassChangeRefusedError(SyncError):
    """More of the customers already in App4Sales would be updated than ``max_change_fraction`` allows."""

    def __init__(self, would_update: int, known: int, max_fraction: float, fields: dict[str, int],
                 examples: list[tuple]):
        self.would_update, self.known, self.max_fraction = would_update, known, max_fraction
        self.fields, self.examples = fields, examples
        self.fraction = would_update / known if known else 0.0
        most = ", ".join(f"{name} ({count})" for name, count in list(fields.items())[:5]) or "none recorded"
        shown = "; ".join(f"{code} {name}: {_cut(old)!r} → {_cut(new)!r}" for code, name, old, new in examples[:5])
        super().__init__(
            f"refusing to update {would_update} of {known} customers already in App4Sales ({self.fraction:.1%}): "
            f"more than MONITOR_MAX_CHANGE_FRACTION={max_fraction:g} ({max_fraction:.1%}); nothing was sent. "
            f"Fields changed most: {most}. Examples: {shown or 'none'}. If this change is meant, run again with "
            "run config ops: {customer_upsert_batches: {config: {approve_mass_change: true}}}")


class SyncLockedError(SyncError):
    """Another run holds the administration's lock and did not give it back within ``lock_timeout``; trying
    again later may work (the step's retry, :mod:`monitor_pipeline.defs.retries`)."""

    transient = True


class SyncInterruptedError(SyncError):
    """App4Sales failed mid-run (after the client's retries). Confirmed batches are in the state; re-run.
    ``transient``: the cause's (a 503 or a timeout is, a rejected batch is not)."""

    def __init__(self, message: str, result: "SyncResult", *, transient: bool | None = None):
        super().__init__(message)
        self.result = result
        if transient is not None:
            self.transient = transient


class SyncStateError(SyncInterruptedError):
    """The state database (``MONITOR_STATE_URL``) could not be reached or written; the password is never in
    the text. Before the lock nothing was sent; later, what was confirmed but not recorded is sent again."""

    transient = True


class PayloadList(Sequence):
    """The payloads a plan sends, in frame order, each built when it is read (a slice: a list of them), so a
    sync of 100k new customers builds each batch on the worker thread that sends it, while others are on
    the wire, instead of all 100k before the first batch."""

    def __init__(self, table: CustomerTable, positions: list[int]):
        self._table, self._positions = table, positions

    @property
    def codes(self) -> list[str]:
        if not self._positions:
            return []
        codes = self._table.codes
        return [codes[i] for i in self._positions]

    def __len__(self) -> int:
        return len(self._positions)

    def names(self) -> list:
        """CustomerName of each payload, without building them."""
        if not self._positions:
            return []
        names = self._table.columns["CustomerName"]
        return [names[i] for i in self._positions]

    def __getitem__(self, item):
        if isinstance(item, slice):
            return [self._table.payload(i) for i in self._positions[item]]
        return self._table.payload(self._positions[item])


@dataclass
class SyncPlan:
    administration: str
    total: int                                  # customers in the file
    to_send: "PayloadList"                      # payloads (built when read), frame order
    reasons: dict[str, str]                     # code → new | inactive | changed | full_refresh (sent ones)
    unchanged: int
    to_deactivate: list[str]                    # empty unless deactivate_missing
    active_count: int                           # active customers in the App4Sales index
    unknown_price_lists: list[tuple[str, int]]  # (code, customers using it)
    dashboards: dict[str, bytes]                # code → dashboard bytes to PUT
    hashes: dict[str, str]                      # code → payload hash, every customer in the file
    dashboard_hashes: dict[str, str | None]     # code → dashboard digest, every customer in the file
    hashes_reused: bool = False                 # the hashes came from the payload hash cache (.hash_cache)
    new_hash_cache: HashCache | None = None     # what to keep for the next run's plan (None: nothing new)
    resynced: list[str] = field(default_factory=list)  # changed, and synced from here before (mass-change guard)
    same_payload: set[str] = field(default_factory=set)  # resynced, its kept payload equal (dashboard, GUID only)
    index_count: int = 0                        # customers in the App4Sales index (enabled or not)

    @property
    def deactivation_fraction(self) -> float:
        return len(self.to_deactivate) / self.active_count if self.active_count else 0.0

    def reason_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for reason in self.reasons.values():
            counts[reason] = counts.get(reason, 0) + 1
        return counts


@dataclass
class SyncResult:
    created: int = 0
    updated: int = 0
    reactivated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    failed: int = 0
    failures: list[dict] = field(default_factory=list)  # {"CustomerCode", "message"}: rejected by App4Sales
    unconfirmed: list[dict] = field(default_factory=list)  # {"CustomerCode", "message"}: answer did not confirm
    dashboards_sent: int = 0
    batches: int = 0
    requests: int = 0
    unknown_price_lists: list = field(default_factory=list)
    scripts_run: list[str] = field(default_factory=list)
    scripts_skipped: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    batch_phase_s: float = 0.0   # first batch sent → last batch answered
    throttled: int = 0           # 429/503 answers App4Sales gave
    lowest_window: int = 0       # fewest calls in flight the adaptive window came down to
    index_customers: int = 0     # customers in the App4Sales index as read before sending (enabled or not)
    hashes_reused: bool = False  # the payload hashes came from the last plan's cache (.hash_cache)
    changes: list[tuple] = field(default_factory=list)  # change-log rows (.changes) of what App4Sales confirmed
    confirmed_codes: set[str] = field(default_factory=set)  # customers App4Sales' answers confirmed

    @property
    def customers_in_app4sales(self) -> int:
        """Customers the administration has after this sync: the index as read, plus the ones it created
        (no extra call: the sync reads the whole index anyway)."""
        return self.index_customers + self.created


def _dashboards_by_code(dashboards: pd.DataFrame | None) -> dict[str, bytes]:
    if dashboards is None or len(dashboards) == 0:
        return {}
    out: dict[str, bytes] = {}
    for code, data in zip(dashboards["CustomerCode"].tolist(), dashboards["Dashboard"].tolist()):
        if isinstance(data, (bytes, bytearray, memoryview)) and code is not None:
            out[code] = bytes(data)
    return out


@dataclass
class PreparedFrames:
    """What planning can work out before the App4Sales index arrives (:func:`prepare_frames`).

    With a usable payload hash cache (:mod:`.hash_cache`) the columnar table is not built at all: ``table``
    is None until a plan needs it (:meth:`table_for`: the cache did not hold, or customers are sent)."""
    table: CustomerTable | None
    dashboards: dict[str, bytes]       # code → dashboard bytes
    digests: list[str | None]          # dashboard digest per customer, table order
    codes: list[str] = field(default_factory=list)
    file_guids: list = field(default_factory=list)      # CustomerGuid as the file has it, table order
    file_prices: list = field(default_factory=list)     # UsesPriceField as the file has it, table order
    key: str | None = None                               # the frames' cache key (None: not tagged)
    cache: HashCache | None = None                       # the cache entry that stands in for hashing
    frames: tuple = ()                                   # the four frames, to build the table on demand

    def table_for(self, guids: list, prices: list) -> CustomerTable:
        """The table with the resolved GUIDs and the deduplicated price lists (built now if the cache stood in
        for it; its ``hashes`` prepare what they need)."""
        if self.table is None:
            self.table = _table(*self.frames)
            if self.table.codes != self.codes:  # cannot happen: the cache was only taken for these codes
                raise RuntimeError("the customer frames changed while they were planned")
        self.table.columns["CustomerGuid"], self.table.columns["UsesPriceField"] = guids, prices
        return self.table


def _table(customers, addresses, contacts) -> CustomerTable:
    """The frames in columnar form, one row per code (the last occurrence kept)."""
    table = CustomerTable(customers, addresses, contacts)
    codes = table.codes
    if len(set(codes)) != len(codes):  # normalization dedups already; keep the last occurrence anyway
        last = {code: i for i, code in enumerate(codes)}
        table.keep([i for i, code in enumerate(codes) if last[code] == i])
    return table


def prepare_frames(customers: pd.DataFrame, addresses: pd.DataFrame | None, contacts: pd.DataFrame | None,
                   dashboards: pd.DataFrame | None, *, cache: HashCache | None = None) -> PreparedFrames:
    """The index-independent part of :func:`plan_sync`: the frames in columnar form (one row per code, the
    last occurrence kept), the dashboards' digests, and every part of the payload hashes that neither the
    index (CustomerGuid) nor the price lists (UsesPriceField) decide. :func:`run_sync` does this while
    the index is being read.

    ``cache``: the payload hash cache of the state; when it was made from these very frames
    (:func:`.hash_cache.frames_key`, the same CustomerCode column) only three columns are read, the
    digests are the cached ones, and the table is built only if the plan needs it."""
    key = frames_key(customers, addresses, contacts, dashboards)
    board_bytes = _dashboards_by_code(dashboards)
    frames = (customers, addresses, contacts)
    if cache is not None and key is not None and cache.key == key:
        codes = _column(customers, "CustomerCode")
        if codes == cache.codes:
            return PreparedFrames(None, board_bytes, cache.digests, codes, _column(customers, "CustomerGuid"),
                                  _column(customers, "UsesPriceField"), key, cache, frames)
    with gc_paused():
        table = _table(*frames)
        digests = [dashboard_digest(board_bytes.get(code)) for code in table.codes]
        table.prepare_hashes()
    return PreparedFrames(table, board_bytes, digests, table.codes, table.columns["CustomerGuid"],
                          table.columns["UsesPriceField"], key, None, frames)


def plan_sync(customers: pd.DataFrame | PreparedFrames, addresses: pd.DataFrame | None = None,
              contacts: pd.DataFrame | None = None, dashboards: pd.DataFrame | None = None, *, index: list[dict],
              price_lists: list[dict] | None, state: AnyState | dict, administration: str, settings: SyncSettings,
              present_codes: Iterable[str] = ()) -> SyncPlan:
    """Decide what to send; touches nothing remote and writes no state. See the module docstring.

    ``customers`` is the customer frame (with the child frames after it) or what :func:`prepare_frames`
    made of the four; ``state`` a :class:`SyncState` or what its ``load()`` returned.
    Columnar: payload dicts are built only for the customers to send, hashes straight from the columns.
    The cyclic GC is paused meanwhile: planning allocates millions of small acyclic objects and
    repeated full collections would otherwise cost about a third of the time.
    """
    prepared = customers if isinstance(customers, PreparedFrames) else \
        prepare_frames(customers, addresses, contacts, dashboards)
    stored = state if isinstance(state, dict) else state.load()
    with gc_paused():
        return _plan(prepared, index=index, price_lists=price_lists, stored=stored, administration=administration,
                     settings=settings, present_codes=present_codes)


def _plan(prepared: PreparedFrames, *, index, price_lists, stored, administration, settings,
          present_codes) -> SyncPlan:
    board_bytes, digests, codes = prepared.dashboards, prepared.digests, prepared.codes
    index_by_code = {row["CustomerCode"]: row for row in index}
    guids = resolve_guid_column(prepared.file_guids, codes,
                                {c: r.get("CustomerGuid") for c, r in index_by_code.items()}, administration)
    prices, unknown = prepared.file_prices, []
    if price_lists is not None:
        prices, unknown = deduplicate_price_column(prices, price_lists)
    cache = prepared.cache
    new_cache = None
    if cache is not None and guids == cache.guids and prices == cache.prices:
        hash_list = cache.hashes  # hashed from these frames, GUIDs and price lists before (.hash_cache)
    else:
        cache = None
        hash_list = prepared.table_for(guids, prices).hashes(digests)
        if prepared.key is not None:
            new_cache = HashCache(prepared.key, codes, guids, prices, digests, hash_list)
    full = settings.full_refresh
    send, reasons, boards_to_send, resynced = [], {}, {}, []
    unchanged = 0
    for i, (code, h, digest) in enumerate(zip(codes, hash_list, digests)):
        previous = stored.get(code)
        known = index_by_code.get(code)
        if known is None:
            reason = "new"
        elif known.get("CustomerEnabled") is False:
            reason = "inactive"
        elif previous is None or previous[0] != h:
            reason = "changed"
            if previous is not None:
                resynced.append(code)
        elif full:
            reason = "full_refresh"
        else:
            unchanged += 1
            reason = None
        if reason is not None:
            reasons[code] = reason
            send.append(i)
        if digest is not None and (full or previous is None or previous[1] != digest):
            boards_to_send[code] = board_bytes[code]
    table = prepared.table_for(guids, prices) if send else prepared.table
    if send:
        table.freeze()
    to_send = PayloadList(table, send)

    hashes = dict(zip(codes, hash_list))
    active = [c for c, r in index_by_code.items() if r.get("CustomerEnabled") is not False]
    present = set(hashes).union(present_codes)  # rejected by normalization is still present in the file
    to_deactivate = sorted(c for c in active if c not in present) if settings.deactivate_missing else []
    return SyncPlan(administration=administration, total=len(codes), to_send=to_send, reasons=reasons,
                    unchanged=unchanged, to_deactivate=to_deactivate, active_count=len(active),
                    unknown_price_lists=unknown, dashboards=boards_to_send, hashes=hashes,
                    dashboard_hashes=dict(zip(codes, digests)), hashes_reused=cache is not None,
                    new_hash_cache=new_cache, resynced=resynced, index_count=len(index_by_code))


def check_deactivation(plan: SyncPlan, settings: SyncSettings) -> None:
    """Raise :class:`DeactivationRefusedError` when the plan would deactivate too large a share."""
    if plan.to_deactivate and plan.deactivation_fraction > settings.deactivate_max_fraction:
        raise DeactivationRefusedError(len(plan.to_deactivate), plan.active_count, settings.deactivate_max_fraction)


def plan_changes(plan: SyncPlan, state: AnyState | None) -> list[tuple]:
    """The change-log rows (:mod:`.changes`) of everything ``plan`` sends or deactivates, in file order, then
    the deactivated: every sent customer compared with the payload the state kept for it. Notes in
    ``plan.same_payload`` the customers sent though their payload equals the kept one (only the dashboard or
    the GUID differs), which the mass-change guard does not count."""
    codes = plan.to_send.codes
    compare = [j for j, code in enumerate(codes) if plan.reasons[code] != "new"]
    old = state.load_payloads([codes[j] for j in compare]) if state is not None and compare else {}
    names = plan.to_send.names()
    rows: list[tuple] = []
    compared = iter(compare)
    nxt = next(compared, None)
    for j, code in enumerate(codes):
        reason = plan.reasons[code]
        if j == nxt:
            nxt = next(compared, None)
            blob = old.get(code)
            new = plan.to_send[j] if blob is not None else None  # built only to compare with a kept payload
            changed = customer_changes(code, reason, unpack(blob), new)
            if blob is not None and changed[0][2] is None:  # equal to the kept payload: no field differs
                plan.same_payload.add(code)
            rows.extend(changed)
        else:
            rows.extend(customer_changes(code, reason, None, {"CustomerName": names[j]}))
    rows.extend((code, "deactivated", None, None, None) for code in plan.to_deactivate)
    return rows


def check_mass_change(plan: SyncPlan, settings: SyncSettings, changes: list[tuple]) -> None:
    """Raise :class:`MassChangeRefusedError` when the plan updates more than ``max_change_fraction`` of the
    customers already in App4Sales, unless the run approved it. Counted: customers this administration's
    state has synced before whose payload now differs (new ones, reactivations, a full refresh of equal
    customers and customers whose dashboard alone changed do not count)."""
    counted = [code for code in plan.resynced if code not in plan.same_payload]
    if settings.approve_mass_change or not counted or not plan.index_count:
        return
    if len(counted) / plan.index_count <= settings.max_change_fraction:
        return
    resynced = set(counted)
    frame = changes_frame(row for row in changes if row[0] in resynced and row[2] is not None)
    fields = field_counts(frame)
    examples, seen = [], set()
    top = list(fields)[:3]
    for code, _reason, name, old, new in frame.itertuples(index=False, name=None):
        generic = folded_field(name)
        if generic in top and generic not in seen:
            seen.add(generic)
            examples.append((code, name, old, new))
    raise MassChangeRefusedError(len(counted), plan.index_count, settings.max_change_fraction, fields, examples)


def _rejection_messages(exc: BaseException, codes: set[str]) -> dict[str, str]:
    messages: dict[str, str] = {}
    for item in getattr(exc, "invalid", None) or []:
        code = item.get("CustomerCode") if isinstance(item, dict) else None
        if code in codes:
            msg = str(item.get("message") or "rejected by App4Sales")
            messages[code] = f"{messages[code]}; {msg}" if code in messages else msg
    return messages


CONFIRMING = ("created", "updated", "reactivated")


def confirmed_results(results: list, sent: set[str]) -> tuple[dict[str, dict], list[str]]:
    """What a batch answer confirms: ``({code: result row}, problems)``.

    A sent customer is confirmed only by an entry ``{"CustomerCode": <its code>, "status": created |
    updated | reactivated}`` (with a ``CustomerGuid`` string or none). ``problems`` describes every entry
    that confirms nothing: not an object, a code that was not sent, another status, a GUID that is not a
    string.
    """
    confirmed: dict[str, dict] = {}
    problems: list[str] = []
    for row in results:
        code = row.get("CustomerCode") if isinstance(row, dict) else None
        if not isinstance(code, str):
            problems.append(f"an entry without a CustomerCode: {str(row)[:80]}")
        elif code not in sent:
            problems.append(f"{code}: named in the answer but not sent in this batch")
        elif row.get("status") not in CONFIRMING:
            problems.append(f"{code}: status {row.get('status')!r} is not created/updated/reactivated")
        elif not isinstance(row.get("CustomerGuid", ""), (str, type(None))):
            problems.append(f"{code}: CustomerGuid {row.get('CustomerGuid')!r} is not a string")
        else:
            confirmed.setdefault(code, row)
    return confirmed, problems


@dataclass
class _BatchOutcome:
    """What App4Sales answered for one batch; built on a worker thread, recorded on the run's thread."""
    number: int
    size: int
    confirmed: dict[str, dict] = field(default_factory=dict)   # code → result row
    packed: dict[str, bytes] = field(default_factory=dict)     # code → payload as sent (.changes.pack)
    failures: list[dict] = field(default_factory=list)
    unconfirmed: list[dict] = field(default_factory=list)


@dataclass
class _DashboardOutcome:
    number: int
    done: list[tuple[str, str | None]]                           # (code, digest) PUT successfully
    error: App4SalesError | None = None


def _send_batch(client: SyncClient, number: int, payloads: "PayloadList", positions: range,
                log: logging.Logger | LogRelay) -> _BatchOutcome:
    """On a worker thread: build the batch's payloads (while other batches are on the wire), send it."""
    outcome = _BatchOutcome(number, len(positions))
    batch = payloads[positions.start:positions.stop]
    outcome.confirmed = _upsert(client, batch, outcome, log)
    outcome.packed = {p["CustomerCode"]: pack(p) for p in batch if p["CustomerCode"] in outcome.confirmed}
    return outcome


def _upsert(client: SyncClient, batch: list[dict], outcome: _BatchOutcome, log) -> dict[str, dict]:
    """Upsert a batch, splitting out customers App4Sales rejects; ``{code: result row}`` of those the
    answers confirmed. Rejected customers go to ``outcome.failures``, unconfirmed ones to ``outcome.unconfirmed``."""
    pending = batch
    while pending:
        try:
            results = client.upsert_customers(pending)
        except BatchRejectedError as exc:
            messages = _rejection_messages(exc, {p["CustomerCode"] for p in pending})
            if not messages:
                if len(pending) == 1:
                    messages = {pending[0]["CustomerCode"]: str(exc) or "rejected by App4Sales"}
                else:  # the rejection names nobody we sent: isolate the culprits one by one
                    log.warning("App4Sales rejected a batch of %d without naming a customer of it (%s); "
                                "sending its customers one by one", len(pending), exc)
                    confirmed: dict[str, dict] = {}
                    for p in pending:
                        confirmed.update(_upsert(client, [p], outcome, log))
                    return confirmed
            for code, message in messages.items():
                log.warning("App4Sales rejected customer %s: %s", code, message)
                outcome.failures.append({"CustomerCode": code, "message": message})
            pending = [p for p in pending if p["CustomerCode"] not in messages]
            continue
        sent = [p["CustomerCode"] for p in pending]
        confirmed, problems = confirmed_results(results, set(sent))
        missing = [code for code in sent if code not in confirmed]
        if problems or missing:
            log.warning("App4Sales answered a batch of %d confirming %d: %s%s", len(sent), len(confirmed),
                        "; ".join(problems[:5]) or "no entry for the others",
                        f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
        for code in missing:
            outcome.unconfirmed.append({"CustomerCode": code, "message": "the batch answer did not confirm it "
                                                                        "(not recorded; sent again next run)"})
        return confirmed
    return {}


def _put_dashboards(client: SyncClient, number: int, codes: list[str], plan: SyncPlan) -> _DashboardOutcome:
    outcome = _DashboardOutcome(number, [])
    try:
        for code in codes:
            client.put_dashboard(code, plan.dashboards[code])
            outcome.done.append((code, plan.dashboard_hashes[code]))
    except App4SalesError as exc:
        outcome.error = exc
    return outcome


class _Progress:
    """A progress line every ``every`` seconds (not one per batch): customers/s and the time left."""

    def __init__(self, total: int, log, every: float = PROGRESS_SECONDS):
        self.total, self.log, self.every = total, log, every
        self.started = time.monotonic()
        self._next = self.started + every

    def due_in(self) -> float:
        return max(0.05, self._next - time.monotonic())

    def tick(self, done: int, window: str) -> None:
        now = time.monotonic()
        if now < self._next or not self.total:
            return
        self._next = now + self.every
        rate = done / (now - self.started)
        left = f"about {(self.total - done) / rate:.0f} s left" if rate > 0 else "no answer yet"
        self.log.info("upsert: %s/%s customers answered, %.0f customers/s, %s%s", f"{done:,}", f"{self.total:,}",
                      rate, left, window)


def _run_script(client: SyncClient, name: str, result: SyncResult, log: logging.Logger) -> None:
    if client.run_script(name):
        log.info("App4Sales script %s ran", name)
        result.scripts_run.append(name)
    else:
        log.warning("App4Sales administration has no script %s; skipped", name)
        result.scripts_skipped.append(name)


def run_sync(client: SyncClient | None, customers: pd.DataFrame, addresses: pd.DataFrame | None,
             contacts: pd.DataFrame | None, dashboards: pd.DataFrame | None, *, state_dir: str | Path | None = None,
             settings: SyncSettings, state_url: str | None = None, tenant: str | None = None,
             present_codes: Iterable[str] = (), owner: str | None = None, lock_timeout: float = 300.0,
             on_progress: ProgressCallback | None = None, log: logging.Logger | None = None,
             connect: Callable[[], AbstractContextManager[SyncClient]] | None = None,
             administration: str | None = None) -> SyncResult:
    """Sync the frames into ``client``'s administration (see the module docstring for the order).

    Instead of ``client``: ``connect()`` opens one only once the administration's lock is held (with
    ``administration`` naming it), so a run waiting for another one's lock holds none of the App4Sales
    host's connection slots (``App4SalesApi.session``); the batches in flight are capped at the client's
    ``window.maximum``.

    ``present_codes``: codes in customers.xml that are not in the frames (customers normalization
    rejected); they are never deactivated. ``owner`` names this run in the lock (e.g. the Dagster run
    id); ``lock_timeout`` bounds the wait for a run holding the administration's lock.
    ``on_progress(batches_answered, batches_total, sent_so_far, total_to_send)`` is called after every batch
    answer, on the calling thread; ``sent_so_far`` counts the customers of the answered batches, rejected
    ones included. ``log`` is written from the calling thread only (lines of the worker threads are
    relayed, :class:`~monitor_pipeline.lib.log_relay.LogRelay`).
    The state is ``state_url``'s (PostgreSQL, ``MONITOR_STATE_URL``) when given, else the SQLite files of
    ``state_dir``; ``tenant`` keeps a tenant's state apart from another's (:func:`.state_store.open_state`).
    Raises :class:`SyncLockedError` or :class:`DeactivationRefusedError` (nothing sent),
    :class:`SyncInterruptedError` (confirmed customers kept in the state; ``.result`` holds the counts so far),
    or :class:`SyncStateError` (the state database unreachable).
    """
    if (client is None) == (connect is None) or (connect is not None and not administration):
        raise TypeError("run_sync needs either client, or connect and administration")
    log = log if isinstance(log, LogRelay) else LogRelay(log or logging.getLogger(__name__))
    started = time.monotonic()
    active: list = [client, getattr(client, "request_count", 0)]  # the client in use, its calls before
    result = SyncResult()
    administration = client.administration if client is not None else administration

    def finish() -> SyncResult:
        current = active[0]
        result.failed = len(result.failures)
        result.requests = getattr(current, "request_count", 0) - active[1]
        result.duration_s = time.monotonic() - started
        window = getattr(current, "window", None)
        if window is not None:
            result.throttled, result.lowest_window = window.throttled, window.lowest
        log.flush()
        return result

    def waiting(holder: str, since: str) -> None:
        log.warning("App4Sales administration %s is being synced by %s (since %s); waiting up to %g s for it",
                    administration, holder, since, lock_timeout)

    location = state_url or state_dir
    if location is None:
        raise TypeError("run_sync needs state_dir or state_url")
    try:
        with open_state(location, administration, tenant) as state, \
                state.lock(owner, timeout=lock_timeout, on_wait=waiting), \
                (connect() if connect is not None else nullcontext(client)) as locked_client:
            if connect is not None:
                active[:] = [locked_client, getattr(locked_client, "request_count", 0)]
                window = getattr(locked_client, "window", None)
                if window is not None and window.maximum < settings.upsert_concurrency:
                    settings = settings.model_copy(update={"upsert_concurrency": window.maximum})
            _locked_sync(locked_client, customers, addresses, contacts, dashboards, state=state, settings=settings,
                         present_codes=present_codes, result=result, finish=finish, on_progress=on_progress,
                         log=log)
    except StateLockedError as exc:  # raised only while waiting for the lock: nothing was sent
        raise SyncLockedError(f"App4Sales administration {administration}: {exc}") from None
    except StateLockLostError as exc:
        finish()
        raise SyncInterruptedError(f"App4Sales sync of {administration} stopped: {exc}", result,
                                   transient=True) from None
    except StateStoreError as exc:
        finish()
        raise SyncStateError(f"App4Sales sync of {administration} stopped: {exc}", result) from None
    return finish()


def _read_and_plan(client: SyncClient, customers, addresses, contacts, dashboards, *, state: AnyState | None,
                   settings: SyncSettings, present_codes: Iterable[str]) -> tuple[SyncPlan, list[dict]]:
    """Read the App4Sales index (and the price lists) and the state, and plan: ``(plan, index)``. Only GETs
    and reads; ``state`` None is an administration never synced from here (an empty state)."""
    # The index (and the price lists) are read while the frames are prepared and the state is loaded:
    # on a remote App4Sales the pages' round trips then cost no planning time.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="app4sales-index") as pool:
        index_call = pool.submit(client.list_customers, expected=state.count() if state is not None else 0)
        prices_call = pool.submit(client.price_lists) if settings.enable_price_deduplication else None
        key = frames_key(customers, addresses, contacts, dashboards)  # an error: the pool waits for the
        cache = state.load_hash_cache(key) if key is not None and state is not None else None  # reads, then raises
        prepared = prepare_frames(customers, addresses, contacts, dashboards, cache=cache)
        stored = state.load() if state is not None else {}
        index = index_call.result()
        price_lists = prices_call.result() if prices_call is not None else None
    plan = plan_sync(prepared, index=index, price_lists=price_lists, state=stored,
                     administration=client.administration, settings=settings, present_codes=present_codes)
    return plan, index


@dataclass
class SyncPreview:
    """What a sync would do (:func:`preview_sync`, a dry run): the plan, and the deactivation guard's refusal
    (its message) if the sync would be refused."""
    plan: SyncPlan
    refused: str | None
    index_customers: int   # customers in the App4Sales index as read (enabled or not)
    changes: list[tuple] = field(default_factory=list)  # change-log rows (.changes) of what would be sent


def preview_sync(client: SyncClient, customers: pd.DataFrame, addresses: pd.DataFrame | None,
                 contacts: pd.DataFrame | None, dashboards: pd.DataFrame | None, *,
                 state_dir: str | Path | None = None, state_url: str | None = None, tenant: str | None = None,
                 settings: SyncSettings, present_codes: Iterable[str] = ()) -> SyncPreview:
    """A dry run: plan against the live App4Sales index exactly as :func:`run_sync` would, and send nothing.

    Only GET calls (the index, the price lists); no script, batch, dashboard or deactivation; the state is
    read, never written (no lock taken, no hash cache saved, no state file created for an administration that
    has none). A plan the deactivation guard would refuse is reported in ``refused``, not raised. Without the
    lock, a sync running at the same time may change what the next real run does.
    """
    location = state_url or state_dir
    if location is None:
        raise TypeError("preview_sync needs state_dir or state_url")
    try:
        with peek_state(location, client.administration, tenant) as state:
            plan, index = _read_and_plan(client, customers, addresses, contacts, dashboards, state=state,
                                         settings=settings, present_codes=present_codes)
            changes = plan_changes(plan, state)
    except StateStoreError as exc:
        raise SyncStateError(f"App4Sales dry run of {client.administration} stopped: {exc}", SyncResult()) from None
    try:
        check_deactivation(plan, settings)
        check_mass_change(plan, settings, changes)
        refused = None
    except DeactivationRefusedError as exc:
        refused = str(exc).replace("nothing was sent or deactivated", "a real run would send nothing")
    except MassChangeRefusedError as exc:
        refused = str(exc).replace("nothing was sent", "a real run would send nothing")
    return SyncPreview(plan, refused, len({row["CustomerCode"] for row in index}), changes)


def _locked_sync(client: SyncClient, customers, addresses, contacts, dashboards, *, state: AnyState,
                 settings: SyncSettings, present_codes: Iterable[str], result: SyncResult, finish: Callable[[], SyncResult],
                 on_progress: ProgressCallback | None, log: logging.Logger) -> None:
    administration = client.administration
    plan, index = _read_and_plan(client, customers, addresses, contacts, dashboards, state=state, settings=settings,
                                 present_codes=present_codes)
    result.index_customers = len({row["CustomerCode"] for row in index})
    result.hashes_reused = plan.hashes_reused
    result.unchanged = plan.unchanged
    result.unknown_price_lists = plan.unknown_price_lists
    for code, count in plan.unknown_price_lists:
        log.warning("price list %r (used by %d customers) is unknown to App4Sales", code, count)
    log.info("plan for %s: %d customers, %d to send %s, %d unchanged, %d to deactivate, %d dashboards",
             administration, plan.total, len(plan.to_send), plan.reason_counts(), plan.unchanged,
             len(plan.to_deactivate), len(plan.dashboards))
    check_deactivation(plan, settings)
    changes = plan_changes(plan, state)
    check_mass_change(plan, settings, changes)

    size = settings.batch_size
    batches = [range(i, min(i + size, len(plan.to_send))) for i in range(0, len(plan.to_send), size)]
    writes = bool(plan.to_send or plan.to_deactivate)
    stage = "running script " + BEFORE_SCRIPT
    try:
        if writes:
            _run_script(client, BEFORE_SCRIPT, result, log)
        with gc_frozen():
            stopped = _send_batches(client, batches, plan, state, settings, result, on_progress, log)
        if stopped is not None:
            stage, exc = stopped
            raise exc
        stage = "sending dashboards"
        leftover = _put_dashboards(client, 0, [c for c in plan.dashboards if c not in plan.reasons], plan)
        _record_dashboards(leftover, state, result)
        if leftover.error is not None:
            raise leftover.error
        result.changes = _confirmed_changes(changes, result)
        if plan.to_deactivate:
            stage = f"deactivating {len(plan.to_deactivate)} customers"
            result.deactivated = client.deactivate_customers(plan.to_deactivate)
            log.info("deactivated %d customers absent from the file", result.deactivated)
            asked = [row for row in changes if row[1] == "deactivated"]
            if result.deactivated != len(plan.to_deactivate):  # the answer is a count: which ones is unknown
                log.warning("App4Sales deactivated %d of the %d customers asked; the change log lists them as "
                            "'deactivation unconfirmed'", result.deactivated, len(plan.to_deactivate))
                asked = [(row[0], "deactivation unconfirmed", *row[2:]) for row in asked]
            result.changes += asked
        if writes:
            stage = "running script " + AFTER_SCRIPT
            _run_script(client, AFTER_SCRIPT, result, log)
        if plan.new_hash_cache is not None:  # the next run of these frames need not hash them again
            state.save_hash_cache(plan.new_hash_cache)
    except App4SalesError as exc:  # App4SalesTransientError and App4SalesProtocolError included
        finish()
        if not result.changes:  # what was confirmed before the stop (the next run does not send it again)
            result.changes = _confirmed_changes(changes, result)
        confirmed = result.created + result.updated + result.reactivated
        remaining = len(plan.to_send) - confirmed - len(result.failures)
        raise SyncInterruptedError(
            f"App4Sales sync of {administration} stopped while {stage}: {exc}. {confirmed} customers "
            f"confirmed and recorded; re-run to send the remaining {remaining}.", result,
            transient=bool(exc.transient)) from exc


def _send_batches(client: SyncClient, batches: list[range], plan: SyncPlan, state: AnyState,
                  settings: SyncSettings, result: SyncResult, on_progress: ProgressCallback | None,
                  log) -> tuple[str, App4SalesError] | None:
    """The batch phase: up to ``settings.upsert_concurrency`` batches (and their dashboards) in flight.

    Each answer is recorded as it arrives, on this thread (the state and the run log are written from
    here only); a confirmed customer's dashboard is PUT right after its batch. The first App4Sales error
    stops new batches; those in flight are waited for and what they confirmed is recorded; then
    ``(stage, error)`` is returned. ``None``: every batch answered.
    """
    concurrency = max(1, settings.upsert_concurrency)
    progress = _Progress(len(plan.to_send), log)
    todo = list(enumerate(batches, start=1))[::-1]
    pending: dict = {}
    stopped: tuple[str, App4SalesError] | None = None
    answered = 0
    started = time.monotonic()
    window = getattr(client, "window", None)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="app4sales-batch") as pool:

        def refill() -> None:
            while stopped is None and todo and len(pending) < concurrency:
                number, batch = todo.pop()
                pending[pool.submit(_send_batch, client, number, plan.to_send, batch, log)] = \
                    f"sending batch {number} of {len(batches)}"

        while True:
            refill()
            if not pending:
                break
            done, _ = wait(pending, timeout=progress.due_in(), return_when=FIRST_COMPLETED)
            answers = []
            for future in done:  # errors first: after one, no new batch goes out
                stage = pending.pop(future)
                exc = future.exception()
                if exc is not None:
                    if not isinstance(exc, App4SalesError):
                        raise exc
                    stopped = stopped or (stage, exc)
                    continue
                outcome = future.result()
                if isinstance(outcome, _DashboardOutcome) and outcome.error is not None:
                    stopped = stopped or (f"sending the dashboards of batch {outcome.number} of {len(batches)}",
                                          outcome.error)
                answers.append(outcome)
            refill()  # the freed places go back to work before the bookkeeping below (state commit, log)
            for outcome in sorted(answers, key=lambda o: o.number):
                if isinstance(outcome, _DashboardOutcome):
                    _record_dashboards(outcome, state, result)
                    continue
                _record_batch(outcome, plan, state, result)
                answered += outcome.size
                boards = [code for code in outcome.confirmed if code in plan.dashboards]
                if boards and stopped is None:
                    pending[pool.submit(_put_dashboards, client, outcome.number, boards, plan)] = "dashboards"
                if on_progress is not None:
                    on_progress(result.batches, len(batches), answered, len(plan.to_send))
            log.flush()
            progress.tick(answered, f" ({window.limit} calls in flight at most)" if window is not None else "")
    if batches:
        result.batch_phase_s = time.monotonic() - started
    if result.failures or result.unconfirmed:  # in file order, however the answers came in
        order = {code: i for i, code in enumerate(plan.to_send.codes)}
        for problems in (result.failures, result.unconfirmed):
            problems.sort(key=lambda problem: order.get(problem["CustomerCode"], -1))
    return stopped


def _confirmed_changes(changes: list[tuple], result: SyncResult) -> list[tuple]:
    """The change-log rows of the customers App4Sales' answers confirmed (a deactivated code is never sent)."""
    return [row for row in changes if row[0] in result.confirmed_codes]


def _record_batch(outcome: _BatchOutcome, plan: SyncPlan, state: AnyState, result: SyncResult) -> None:
    state.save_hashes((code, plan.hashes[code], row.get("CustomerGuid"), outcome.packed.get(code))
                      for code, row in outcome.confirmed.items())
    result.confirmed_codes.update(outcome.confirmed)
    for row in outcome.confirmed.values():
        setattr(result, row["status"], getattr(result, row["status"]) + 1)
    result.failures.extend(outcome.failures)
    result.unconfirmed.extend(outcome.unconfirmed)
    result.batches += 1


def _record_dashboards(outcome: _DashboardOutcome, state: AnyState, result: SyncResult) -> None:
    if outcome.done:
        state.save_dashboard_hashes(outcome.done)
        result.dashboards_sent += len(outcome.done)
