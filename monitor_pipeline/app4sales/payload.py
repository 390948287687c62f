"""Customer frames → JSON-ready ``POST customers/batch`` payloads, GUIDs, price dedup, hashes (SPEC §5)."""

from __future__ import annotations

import gc
import hashlib
import json
import uuid
from json.encoder import encode_basestring_ascii
from collections import Counter
from collections.abc import Iterable
from contextlib import contextmanager

import numpy as np
import pandas as pd

from monitor_pipeline.lib.json_text import compact_encoder

#: Fixed namespace of the project's deterministic CustomerGuids: uuid5(NAMESPACE, "<administration>:<code>").
#: Never change it — every GUID generated so far depends on it.
CUSTOMER_GUID_NAMESPACE = uuid.UUID("39c34c9b-3ddb-4c22-834c-e7ed1a22ce32")

CUSTOMER_FIELDS = (
    "CustomerGuid", "CustomerCode", "CustomerName", "ChamberOfCommerceCode", "VatCode", "VatLiable", "Discount",
    "UsesPriceField", "ActionPriceList", "HidePrices", "LanguageCode", "CustomerManager", "Sysmodified",
    "DynamicFreeFields", "FreeFields", "CustomerClassification", "ItemFilter", "CustomerNote",
    "PaymentConditionCode", "DeliveryMethod", "Filters",
)
ADDRESS_FIELDS = ("AddressType", "AddressLine1", "AddressLine2", "PostCode", "City", "Country", "Email", "Phone",
                  "Fax", "IsMainAddress")
CONTACT_FIELDS = ("FullName", "FirstName", "MiddleName", "LastName", "Email", "Phonenumber", "IsMainContactPerson",
                  "DynamicFreeFields")
BOOL_FIELDS = frozenset({"VatLiable", "HidePrices", "IsMainAddress", "IsMainContactPerson"})
FLOAT_FIELDS = frozenset({"Discount"})


@contextmanager
def gc_paused():
    """Pause the cyclic GC while building millions of small acyclic objects (repeated full collections
    otherwise cost about a third of the time); restores the previous state."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def gc_frozen():
    """Collections leave every object that exists now alone (``gc.freeze``) until the block ends: the batch
    phase builds and drops payloads by the thousand, and each full collection would otherwise walk the whole
    plan (millions of objects) again. New garbage is still collected."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _column(frame: pd.DataFrame, name: str) -> list:
    """One column as a list of plain Python values: None for every kind of null, bool/float/str otherwise."""
    if name not in frame.columns:
        return [None] * len(frame)
    series = frame[name]
    values = series.astype(object).where(series.notna(), None).tolist()
    if name in BOOL_FIELDS:
        return [None if v is None else bool(v) for v in values]
    if name in FLOAT_FIELDS:
        return [None if v is None else float(v) for v in values]
    if series.dtype == object or not pd.api.types.is_string_dtype(series.dtype):
        return [v if v is None or type(v) is str else str(v) for v in values]
    return values


class _Children:
    """A child frame (addresses or contacts) by CustomerCode: its columns as plain lists and, per code, the
    positions of its rows in frame order (the normalization emits a customer's rows together; a code that
    comes back later gets its rows appended, so any order works). Row tuples and dicts are built only for
    the customers that are sent."""

    def __init__(self, frame: pd.DataFrame | None, fields: tuple[str, ...]):
        self.fields = fields
        self.spans: dict[str, list[tuple[int, int]]] = {}
        if frame is None or len(frame) == 0:
            self.columns: list[list] = [[] for _ in fields]
            return
        self.columns = [_column(frame, f) for f in fields]
        codes = np.asarray(_column(frame, "CustomerCode"), dtype=object)
        starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))  # where a run of equal codes starts
        ends = np.append(starts[1:], len(codes))
        spans = self.spans
        for code, start, end in zip(codes[starts].tolist(), starts.tolist(), ends.tolist()):
            if code is not None:
                if code in spans:
                    spans[code].append((start, end))
                else:
                    spans[code] = [(start, end)]

    def rows(self, code: str) -> list[tuple]:
        columns = self.columns
        return [tuple(col[j] for col in columns) for a, b in self.spans.get(code, ()) for j in range(a, b)]

    def records(self, code: str) -> list[dict]:
        return [dict(zip(self.fields, row)) for row in self.rows(code)]

    def encoded(self) -> dict[str, str]:
        """``{code: canonical JSON of its rows}`` — what ``_canonical(self.rows(code))`` gives, column-wise."""
        if not self.spans:
            return {}
        rows = [f"[{row}]" for row in map(",".join, zip(*(_encode_column(col) for col in self.columns)))]
        out = {}
        for code, spans in self.spans.items():
            if len(spans) == 1:
                a, b = spans[0]
                out[code] = "[" + ",".join(rows[a:b]) + "]"
            else:
                out[code] = "[" + ",".join(row for a, b in spans for row in rows[a:b]) + "]"
        return out


class CustomerTable:
    """The frames in columnar, plain-Python form: cheap to hash, turned into payload dicts only on demand.

    ``columns`` maps every CUSTOMER_FIELDS name to a list (mutable: GUID resolution and price
    deduplication work on it); ``addresses``/``contacts`` hold the child rows by code.

    Hashing is split in two so that most of it can run while the App4Sales index is still on its way
    (:func:`~monitor_pipeline.app4sales.sync.run_sync`): :meth:`prepare_hashes` encodes everything but the
    two columns the index and the price lists decide (CustomerGuid, UsesPriceField); :meth:`hashes` adds
    those and takes the sha256. The result is :func:`payload_hash` of each payload, to the bit.
    """

    _GUID, _PRICE = CUSTOMER_FIELDS.index("CustomerGuid"), CUSTOMER_FIELDS.index("UsesPriceField")

    def __init__(self, customers: pd.DataFrame, addresses: pd.DataFrame | None, contacts: pd.DataFrame | None):
        self.columns: dict[str, list] = {f: _column(customers, f) for f in CUSTOMER_FIELDS}
        self.addresses = _Children(addresses, ADDRESS_FIELDS)
        self.contacts = _Children(contacts, CONTACT_FIELDS)
        self.rows: list[tuple] | None = None
        self._prepared: tuple[list[str], list[str]] | None = None

    @property
    def codes(self) -> list:
        return self.columns["CustomerCode"]

    def __len__(self) -> int:
        return len(self.codes)

    def keep(self, positions: list[int]) -> None:
        """Keep only the customers at ``positions`` (in that order)."""
        self.columns = {f: [col[i] for i in positions] for f, col in self.columns.items()}
        self.rows = self._prepared = None

    def freeze(self) -> list[tuple]:
        """Customer rows as tuples in CUSTOMER_FIELDS order (after the columns are final)."""
        self.rows = list(zip(*self.columns.values()))
        return self.rows

    def payload(self, i: int) -> dict:
        row = self.rows[i] if self.rows is not None else tuple(col[i] for col in self.columns.values())
        payload = dict(zip(CUSTOMER_FIELDS, row))
        code = row[1]
        payload["Addresses"] = self.addresses.records(code)
        payload["Contacts"] = self.contacts.records(code)
        return payload

    def prepare_hashes(self) -> None:
        """Encode what neither the index nor the price lists change: per customer, the canonical JSON of its
        fields between CustomerGuid and UsesPriceField, of those after it, and of its addresses and contacts."""
        columns = list(self.columns.values())
        encoded = [None if i in (self._GUID, self._PRICE) else _encode_column(col) for i, col in enumerate(columns)]
        middle = map(",".join, zip(*encoded[self._GUID + 1:self._PRICE]))
        after = map(",".join, zip(*encoded[self._PRICE + 1:]))
        addresses, contacts = self.addresses.encoded(), self.contacts.encoded()
        tails = [f"],{addresses.get(code, '[]')},{contacts.get(code, '[]')}]" for code in self.codes]
        self._prepared = ([f",{m}," for m in middle], [f",{a}{t}" for a, t in zip(after, tails)])

    def hashes(self, digests: list[str | None]) -> list[str]:
        """:func:`payload_hash` of every customer with the columns as they are now (no payload dicts built)."""
        if self._prepared is None:
            self.prepare_hashes()
        middle, after = self._prepared
        guids = _encode_column(self.columns["CustomerGuid"])
        prices = _encode_column(self.columns["UsesPriceField"])
        base = hashlib.sha256(_SCHEMA_TAG)
        out = []
        for g, m, p, a, d in zip(guids, middle, prices, after, digests):
            h = base.copy()
            h.update(f"[[{g}{m}{p}{a}\x00dashboard:{d or '-'}".encode("ascii"))
            out.append(h.hexdigest())
        return out


def build_payloads(customers: pd.DataFrame, addresses: pd.DataFrame | None,
                   contacts: pd.DataFrame | None) -> list[dict]:
    """One dict per customer row, in frame order, exactly in the contract's batch shape.

    All customer fields (missing columns become None), then ``Addresses`` and ``Contacts`` — the rows of
    the child frames with the same CustomerCode, in frame order; empty lists when there are none. Values
    are plain ``None``/``bool``/``float``/``str`` (no NaN, NA or numpy scalars). CustomerGuid is the
    file's here; :func:`resolve_guids` fills the gaps.
    """
    with gc_paused():
        table = CustomerTable(customers, addresses, contacts)
        table.freeze()
        return [table.payload(i) for i in range(len(table))]


def generated_guid(administration: str, code: str) -> str:
    """The deterministic GUID of a customer App4Sales does not know yet."""
    return str(uuid.uuid5(CUSTOMER_GUID_NAMESPACE, f"{administration}:{code}"))


def resolve_guid(code: str, file_guid: str | None, index_guid: str | None, administration: str) -> str:
    """The file's GUID, else the existing App4Sales customer's, else :func:`generated_guid`."""
    if file_guid:
        return file_guid
    if index_guid:
        return str(index_guid).lower()
    return generated_guid(administration, code)


def resolve_guids(payloads: Iterable[dict], index_guids: dict[str, str | None], administration: str) -> None:
    """Set every payload's CustomerGuid in place (see :func:`resolve_guid`)."""
    for p in payloads:
        if not p.get("CustomerGuid"):
            code = p["CustomerCode"]
            p["CustomerGuid"] = resolve_guid(code, None, index_guids.get(code), administration)


def resolve_guid_column(guids: list, codes: list, index_guids: dict[str, str | None], administration: str) -> list:
    """:func:`resolve_guid` over columns."""
    return [g if g else resolve_guid(c, None, index_guids.get(c), administration) for g, c in zip(guids, codes)]


def deduplicate_prices(payloads: Iterable[dict], price_lists: list[dict]) -> list[tuple[str, int]]:
    """Replace UsesPriceField by its DeduplicatedCode in place, where App4Sales has one.

    Returns the price list codes App4Sales does not know, ``[(code, customers using it)]`` sorted by
    code; those customers keep their code unchanged.
    """
    payloads = list(payloads)
    column, unknown = deduplicate_price_column([p.get("UsesPriceField") for p in payloads], price_lists)
    for p, value in zip(payloads, column):
        p["UsesPriceField"] = value
    return unknown


def deduplicate_price_column(values: list, price_lists: list[dict]) -> tuple[list, list[tuple[str, int]]]:
    """:func:`deduplicate_prices` over the UsesPriceField column: ``(new column, unknown report)``."""
    known = {str(p["Code"]): p.get("DeduplicatedCode") for p in price_lists if p.get("Code") is not None}
    unknown: Counter[str] = Counter()
    out = []
    for code in values:
        if code is not None:
            if code not in known:
                unknown[code] += 1
            elif known[code]:
                code = str(known[code])
        out.append(code)
    return out, sorted(unknown.items())


def dashboard_digest(dashboard: bytes | None) -> str | None:
    return None if dashboard is None else hashlib.sha256(dashboard).hexdigest()


# Canonical form: JSON of [customer values, [address values…], [contact values…]] with every record's
# values in the fixed *_FIELDS order — equivalent to sort_keys JSON of the payload for this fixed schema,
# without paying for the keys. The schema tag makes any change of the field lists change every hash.
_SCHEMA_TAG = json.dumps([CUSTOMER_FIELDS, ADDRESS_FIELDS, CONTACT_FIELDS], separators=(",", ":")).encode()
_SCHEMA_TAG = hashlib.sha256(b"a4s-payload-v1" + _SCHEMA_TAG).digest()


#: The canonical JSON text of a value (sorted keys, a NaN raises).
_canonical = compact_encoder(sort_keys=True, allow_nan=False)


_JSON_BOOL = {None: "null", True: "true", False: "false"}


def _encode_column(values: list) -> list[str]:
    """Each value as :func:`_canonical` writes it: a string column through the C string encoder at once, a
    column of booleans through a table, anything else value by value (floats: a NaN or infinity raises)."""
    try:
        return ["null" if v is None else encode_basestring_ascii(v) for v in values]
    except TypeError:  # not only strings
        pass
    if all(v is None or type(v) is bool for v in values):
        return [_JSON_BOOL[v] for v in values]
    return ["null" if v is None else _canonical(v) for v in values]


def _hash_parts(row, addresses, contacts, digest: str | None) -> str:
    h = hashlib.sha256(_SCHEMA_TAG)
    h.update(_canonical((row, addresses, contacts)).encode("ascii"))
    h.update(b"\x00dashboard:" + (digest or "-").encode("ascii"))
    return h.hexdigest()


def hash_with_digest(payload: dict, digest: str | None) -> str:
    """:func:`payload_hash` with the dashboard digest already computed."""
    return _hash_parts(tuple(payload.get(f) for f in CUSTOMER_FIELDS),
                       [tuple(a.get(f) for f in ADDRESS_FIELDS) for a in payload.get("Addresses") or ()],
                       [tuple(c.get(f) for f in CONTACT_FIELDS) for c in payload.get("Contacts") or ()],
                       digest)


def payload_hash(payload: dict, dashboard: bytes | None) -> str:
    """sha256 over a canonical JSON of the whole payload as sent (resolved GUID, deduplicated price list,
    all fields incl. the note, addresses and contacts in order) plus the dashboard's sha256.

    Canonical = the values of each record in the contract's fixed field order (see ``_SCHEMA_TAG``);
    a NaN raises instead of hashing silently.
    """
    return hash_with_digest(payload, dashboard_digest(dashboard))
