"""SQLite storage of the App4Sales sandbox: every table is keyed by administration.

One connection per call, WAL journal, and a process-wide write lock plus ``BEGIN IMMEDIATE``
so that each mutating call (a whole customer batch in particular) is one atomic transaction.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from monitor_pipeline.lib.json_text import compact_encoder

MAX_BATCH = 100
MAX_TAKE = 1000

STR, BOOL, NUM, ANY = "string", "boolean", "number", "any"
CUSTOMER_FIELDS = {
    "CustomerGuid": STR, "CustomerCode": STR, "CustomerName": STR, "ChamberOfCommerceCode": STR,
    "VatCode": STR, "VatLiable": BOOL, "Discount": NUM, "UsesPriceField": STR, "ActionPriceList": STR,
    "HidePrices": BOOL, "LanguageCode": STR, "CustomerManager": STR, "Sysmodified": STR,
    "DynamicFreeFields": ANY, "FreeFields": ANY, "CustomerClassification": ANY, "ItemFilter": ANY,
    "CustomerNote": STR, "PaymentConditionCode": STR, "DeliveryMethod": STR, "Filters": ANY,
    "Addresses": ANY, "Contacts": ANY,
}
ADDRESS_FIELDS = {
    "AddressType": STR, "AddressLine1": STR, "AddressLine2": STR, "PostCode": STR, "City": STR,
    "Country": STR, "Email": STR, "Phone": STR, "Fax": STR, "IsMainAddress": BOOL,
}
CONTACT_FIELDS = {
    "FullName": STR, "FirstName": STR, "MiddleName": STR, "LastName": STR, "Email": STR,
    "Phonenumber": STR, "IsMainContactPerson": BOOL, "DynamicFreeFields": ANY,
}

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    admin TEXT NOT NULL, code TEXT NOT NULL, guid TEXT NOT NULL, name TEXT NOT NULL,
    enabled INTEGER NOT NULL, fields TEXT NOT NULL, addresses TEXT NOT NULL, contacts TEXT NOT NULL,
    note TEXT, note_id INTEGER, note_revision INTEGER NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY (admin, code)) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS customers_guid ON customers (admin, guid);
-- narrow covering index for `GET customers?skip&take`: OFFSET then walks small index rows, not the JSON blobs
CREATE INDEX IF NOT EXISTS customers_listing ON customers (admin, code, guid, name, enabled);
CREATE TABLE IF NOT EXISTS dashboards (
    admin TEXT NOT NULL, code TEXT NOT NULL, data BLOB NOT NULL, sha256 TEXT NOT NULL,
    size INTEGER NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (admin, code));
CREATE TABLE IF NOT EXISTS counters (
    admin TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL, PRIMARY KEY (admin, name));
CREATE TABLE IF NOT EXISTS scripts (admin TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (admin, name));
CREATE TABLE IF NOT EXISTS pricelists (admin TEXT PRIMARY KEY, items TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS new_customers (
    admin TEXT NOT NULL, seq INTEGER NOT NULL, guid TEXT NOT NULL, code TEXT, name TEXT NOT NULL,
    xml TEXT NOT NULL, created_at TEXT NOT NULL, fail_code INTEGER NOT NULL,
    result TEXT, error TEXT, posted_at TEXT, posts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (admin, seq));
CREATE UNIQUE INDEX IF NOT EXISTS new_customers_guid ON new_customers (admin, guid);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, admin TEXT NOT NULL, at TEXT NOT NULL,
    kind TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_admin ON events (admin, id);
"""


class StoreError(Exception):
    """A request the store refuses; ``status`` is the HTTP status the app answers with."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_CANONICAL_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def norm_guid(value: str) -> str | None:
    """The GUID in its canonical form (lower case, hyphens), None when ``value`` is none; the canonical form
    itself (what the client sends) is returned as it is, without parsing it again."""
    if isinstance(value, str) and _CANONICAL_GUID.fullmatch(value):
        return value
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        return None


#: ``json.dumps(value)`` compactly, with one C encoder built once: the JSON text a customer's columns are stored as.
_dumps = compact_encoder(sort_keys=False, allow_nan=True)


def _type_ok(value: Any, kind: str) -> bool:
    if value is None or kind == ANY:
        return True
    if kind == STR:
        return isinstance(value, str)
    if kind == BOOL:
        return isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: The exact types JSON decoding gives for each kind (None: null, any type); a quick yes for the common case.
_JSON_TYPES = {STR: (str, type(None)), BOOL: (bool, type(None)), NUM: (int, float, type(None)), ANY: None}


def _plainly_valid(obj: dict, spec: dict[str, str]) -> bool:
    """True when every key is known and every value has an exact JSON type of its kind; False means
    "look closer" (:func:`_check_fields` then names the problems, if there are any)."""
    for key, value in obj.items():
        kind = spec.get(key)
        if kind is None:
            return False
        types = _JSON_TYPES[kind]
        if types is not None and type(value) not in types:
            return False
    return True


def _check_fields(obj: Any, spec: dict[str, str], where: str) -> list[str]:
    if not isinstance(obj, dict):
        return [f"{where} must be an object"]
    if _plainly_valid(obj, spec):
        return []
    problems = [f"{where}: unknown field {key!r}" for key in obj if key not in spec]
    problems += [f"{where}: {key} must be a {kind} or null" for key, kind in spec.items()
                 if key in obj and not _type_ok(obj[key], kind)]
    return problems


def validate_customer(customer: Any) -> list[str]:
    """Every problem with one customer of a batch (empty list: valid)."""
    problems = _check_fields(customer, CUSTOMER_FIELDS, "customer")
    if not isinstance(customer, dict):
        return problems
    for key in ("CustomerCode", "CustomerName"):
        value = customer.get(key)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{key} is mandatory and must be a non-empty string")
    guid = customer.get("CustomerGuid")
    if guid is not None and norm_guid(guid) is None:
        problems.append(f"CustomerGuid {guid!r} is not a valid GUID")
    for key, spec, label in (("Addresses", ADDRESS_FIELDS, "address"), ("Contacts", CONTACT_FIELDS, "contact")):
        items = customer.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            problems.append(f"{key} must be a list or null")
            continue
        for i, item in enumerate(items):
            problems += _check_fields(item, spec, f"{label} {i}")
    return problems


def default_xml(guid: str, name: str, code: str | None) -> str:
    code_xml = f"<customerCode>{escape(code)}</customerCode>" if code else ""
    return ('<?xml version="1.0" encoding="utf-8"?>\n<NewCustomers><Customer>'
            f"<customerGuid>{guid}</customerGuid>{code_xml}<customerName>{escape(name)}</customerName>"
            "</Customer></NewCustomers>\n")


class SandboxStore:
    def __init__(self, path: str | Path):
        self.path = str(path)
        self._write_lock = threading.Lock()
        self._local = threading.local()
        con = self._connect()
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(SCHEMA)
        finally:
            con.close()

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA synchronous=NORMAL")
        return con

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, kept open: opening and closing one per call made SQLite checkpoint the
        whole WAL on every close (the last connection), which was most of a batch's cost."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self._connect()
        return con

    @contextmanager
    def _tx(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        con = self._connection()
        lock = self._write_lock if write else None
        if lock:
            lock.acquire()
        try:
            con.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            if lock:
                lock.release()

    @staticmethod
    def _event(con: sqlite3.Connection, admin: str, kind: str, **detail: Any) -> None:
        con.execute("INSERT INTO events (admin, at, kind, detail) VALUES (?, ?, ?, ?)",
                    (admin, now(), kind, json.dumps(detail)))

    @staticmethod
    def _next(con: sqlite3.Connection, admin: str, name: str, count: int = 1) -> int:
        """Reserve ``count`` values of a per-administration counter; returns the first."""
        row = con.execute("SELECT value FROM counters WHERE admin=? AND name=?", (admin, name)).fetchone()
        first = (row[0] if row else 0) + 1
        con.execute("INSERT INTO counters (admin, name, value) VALUES (?, ?, ?) "
                    "ON CONFLICT (admin, name) DO UPDATE SET value=excluded.value", (admin, name, first + count - 1))
        return first

    # --- customers -------------------------------------------------------------------------
    def list_customers(self, admin: str, skip: int, take: int) -> dict:
        with self._tx(write=False) as con:
            total = con.execute("SELECT COUNT(*) FROM customers WHERE admin=?", (admin,)).fetchone()[0]
            rows = con.execute("SELECT guid, code, name, enabled FROM customers WHERE admin=? "
                               "ORDER BY code LIMIT ? OFFSET ?", (admin, take, skip)).fetchall()
        items = [{"CustomerGuid": g, "CustomerCode": c, "CustomerName": n, "CustomerEnabled": bool(e)}
                 for g, c, n, e in rows]
        return {"items": items, "total": total}

    def upsert(self, admin: str, customers: list[Any]) -> list[dict]:
        invalid: list[dict] = []
        seen_codes: set[str] = set()
        for i, customer in enumerate(customers):
            problems = validate_customer(customer)
            code = customer.get("CustomerCode") if isinstance(customer, dict) else None
            if isinstance(code, str) and code in seen_codes:
                problems.append(f"CustomerCode {code!r} appears more than once in the batch")
            seen_codes.add(code)
            if problems:
                invalid.append({"index": i, "CustomerCode": code, "message": "; ".join(problems)})
        if invalid:
            raise StoreError(400, f"{len(invalid)} invalid customer(s); nothing stored", invalid=invalid)
        codes = [c["CustomerCode"] for c in customers]
        given = {c["CustomerCode"]: norm_guid(c["CustomerGuid"]) for c in customers if c.get("CustomerGuid")}
        with self._tx() as con:
            existing = {}
            owners = {}
            for start in range(0, len(codes), 500):
                part = codes[start:start + 500]
                marks = ",".join("?" * len(part))
                for code, guid, enabled in con.execute(
                        f"SELECT code, guid, enabled FROM customers WHERE admin=? AND code IN ({marks})", (admin, *part)):
                    existing[code] = (guid, bool(enabled))
            guids = list(given.values())
            if guids:
                marks = ",".join("?" * len(guids))
                owners = dict(con.execute(f"SELECT guid, code FROM customers WHERE admin=? AND guid IN ({marks})",
                                          (admin, *guids)).fetchall())
            claimed: dict[str, str] = {}
            rows, results = [], []
            stamp = now()
            note_ids = self._next(con, admin, "note", len(customers))
            for i, customer in enumerate(customers):
                code = customer["CustomerCode"]
                guid = given.get(code) or (existing[code][0] if code in existing else str(uuid.uuid4()))
                owner = owners.get(guid, code)
                if owner != code:
                    invalid.append({"index": i, "CustomerCode": code,
                                    "message": f"CustomerGuid {guid} belongs to customer {owner}"})
                elif claimed.setdefault(guid, code) != code:
                    invalid.append({"index": i, "CustomerCode": code,
                                    "message": f"CustomerGuid {guid} is also given to {claimed[guid]} in this batch"})
                status = ("created" if code not in existing else "updated" if existing[code][1] else "reactivated")
                fields = {k: v for k, v in customer.items() if k not in ("Addresses", "Contacts")}
                fields["CustomerGuid"] = guid
                note = customer.get("CustomerNote")
                rows.append((admin, code, guid, customer["CustomerName"], _dumps(fields),
                             _dumps(customer.get("Addresses") or []), _dumps(customer.get("Contacts") or []),
                             note, note_ids + i if note is not None else None, stamp, stamp))
                results.append({"CustomerCode": code, "CustomerGuid": guid, "status": status})
            if invalid:
                raise StoreError(400, f"{len(invalid)} invalid customer(s); nothing stored", invalid=invalid)
            con.executemany(
                "INSERT INTO customers (admin, code, guid, name, enabled, fields, addresses, contacts, note, note_id,"
                " note_revision, created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, 1, ?, ?)"
                " ON CONFLICT (admin, code) DO UPDATE SET guid=excluded.guid, name=excluded.name, enabled=1,"
                " fields=excluded.fields, addresses=excluded.addresses, contacts=excluded.contacts,"
                " note=excluded.note, note_id=excluded.note_id, note_revision=customers.note_revision+1,"
                " updated_at=excluded.updated_at", rows)
            self._event(con, admin, "batch", codes=codes, statuses=[r["status"] for r in results])
        return results

    def deactivate(self, admin: str, codes: list[str]) -> int:
        with self._tx() as con:
            changed = 0
            for start in range(0, len(codes), 500):
                part = codes[start:start + 500]
                marks = ",".join("?" * len(part))
                changed += con.execute(f"UPDATE customers SET enabled=0, updated_at=? WHERE admin=? AND enabled=1 "
                                       f"AND code IN ({marks})", (now(), admin, *part)).rowcount
            self._event(con, admin, "deactivate", codes=codes, deactivated=changed)
        return changed

    def put_dashboard(self, admin: str, code: str, data: bytes) -> None:
        digest = hashlib.sha256(data).hexdigest()
        with self._tx() as con:
            if not con.execute("SELECT 1 FROM customers WHERE admin=? AND code=?", (admin, code)).fetchone():
                raise StoreError(404, f"unknown customer {code}")
            con.execute("INSERT OR REPLACE INTO dashboards VALUES (?, ?, ?, ?, ?, ?)",
                        (admin, code, data, digest, len(data), now()))
            self._event(con, admin, "dashboard", code=code, sha256=digest, size=len(data))

    def get_customer(self, admin: str, code: str) -> dict:
        with self._tx(write=False) as con:
            row = con.execute("SELECT guid, name, enabled, fields, addresses, contacts, note, note_id, note_revision,"
                              " created_at, updated_at FROM customers WHERE admin=? AND code=?", (admin, code)).fetchone()
            dash = con.execute("SELECT sha256, size FROM dashboards WHERE admin=? AND code=?", (admin, code)).fetchone()
        if row is None:
            raise StoreError(404, f"unknown customer {code}")
        guid, name, enabled, fields, addresses, contacts, note, note_id, revision, created, updated = row
        return {**json.loads(fields), "CustomerGuid": guid, "CustomerCode": code, "CustomerName": name,
                "CustomerEnabled": bool(enabled), "Addresses": json.loads(addresses),
                "Contacts": json.loads(contacts), "CustomerNote": note, "NoteId": note_id, "NoteRevision": revision,
                "Dashboard": {"sha256": dash[0], "size": dash[1]} if dash else None,
                "CreatedAt": created, "UpdatedAt": updated}

    def all_customers(self, admin: str, limit: int = 500) -> list[dict]:
        with self._tx(write=False) as con:
            codes = [r[0] for r in con.execute("SELECT code FROM customers WHERE admin=? ORDER BY code LIMIT ?",
                                               (admin, limit))]
        return [self.get_customer(admin, code) for code in codes]

    # --- scripts and price lists -----------------------------------------------------------
    def run_script(self, admin: str, name: str) -> bool:
        with self._tx() as con:
            found = con.execute("SELECT 1 FROM scripts WHERE admin=? AND name=?", (admin, name)).fetchone() is not None
            self._event(con, admin, "script", name=name, found=found)
        return found

    def register_script(self, admin: str, name: str) -> None:
        with self._tx() as con:
            con.execute("INSERT OR IGNORE INTO scripts VALUES (?, ?)", (admin, name))

    def delete_script(self, admin: str, name: str) -> None:
        with self._tx() as con:
            con.execute("DELETE FROM scripts WHERE admin=? AND name=?", (admin, name))

    def price_lists(self, admin: str) -> list:
        with self._tx(write=False) as con:
            row = con.execute("SELECT items FROM pricelists WHERE admin=?", (admin,)).fetchone()
        return json.loads(row[0]) if row else []

    def set_price_lists(self, admin: str, items: list) -> None:
        with self._tx() as con:
            con.execute("INSERT OR REPLACE INTO pricelists VALUES (?, ?)", (admin, json.dumps(items)))

    # --- new customers (the export feed) ---------------------------------------------------
    def create_new_customer(self, admin: str, name: str, xml: str | None = None, fail_code: bool = False) -> dict:
        guid = str(uuid.uuid4())
        with self._tx() as con:
            seq = self._next(con, admin, "sequence")
            code = None
            if not fail_code:
                number = self._next(con, admin, "code")
                while True:
                    code = f"C{number:05d}"
                    taken = con.execute("SELECT 1 FROM customers WHERE admin=? AND code=? UNION ALL "
                                        "SELECT 1 FROM new_customers WHERE admin=? AND code=?",
                                        (admin, code, admin, code)).fetchone()
                    if not taken:
                        break
                    number = self._next(con, admin, "code")
            con.execute("INSERT INTO new_customers (admin, seq, guid, code, name, xml, created_at, fail_code)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (admin, seq, guid, code, name, xml if xml is not None else default_xml(guid, name, code),
                         datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), int(fail_code)))
            self._event(con, admin, "new_customer", sequence=seq, guid=guid, code=code)
        return {"Sequence": seq, "CustomerGuid": guid, "CustomerCode": code}

    def new_customers(self, admin: str, after: int, take: int) -> list[dict]:
        with self._tx(write=False) as con:
            rows = con.execute("SELECT seq, guid, created_at, xml FROM new_customers WHERE admin=? AND seq>? "
                               "ORDER BY seq LIMIT ?", (admin, after, take)).fetchall()
        return [{"Sequence": s, "CustomerGuid": g, "CreatedAt": c, "Xml": x} for s, g, c, x in rows]

    def customer_code(self, admin: str, guid: str) -> str:
        key = norm_guid(guid)
        with self._tx(write=False) as con:
            row = con.execute("SELECT code, fail_code FROM new_customers WHERE admin=? AND guid=?",
                              (admin, key)).fetchone()
            if row is None:
                found = con.execute("SELECT code FROM customers WHERE admin=? AND guid=?", (admin, key)).fetchone()
                row = (found[0], 0) if found else None
        if row is None:
            raise StoreError(404, f"unknown customer GUID {guid}")
        if row[1] or not row[0]:
            raise StoreError(409, f"no customer code could be generated for {guid}")
        return row[0]

    def post_result(self, admin: str, guid: str, result: str | None, error: str | None) -> None:
        with self._tx() as con:
            changed = con.execute("UPDATE new_customers SET result=?, error=?, posted_at=?, posts=posts+1 "
                                  "WHERE admin=? AND guid=?", (result, error, now(), admin, norm_guid(guid))).rowcount
            if not changed:
                raise StoreError(404, f"unknown new customer GUID {guid}")
            self._event(con, admin, "result", guid=norm_guid(guid), result=result, error=error)

    def get_result(self, admin: str, guid: str) -> dict:
        with self._tx(write=False) as con:
            row = con.execute("SELECT seq, code, result, error, posted_at, posts FROM new_customers "
                              "WHERE admin=? AND guid=?", (admin, norm_guid(guid))).fetchone()
        if row is None:
            raise StoreError(404, f"unknown new customer GUID {guid}")
        seq, code, result, error, posted_at, posts = row
        return {"CustomerGuid": norm_guid(guid), "Sequence": seq, "CustomerCode": code, "Result": result,
                "Error": error, "PostedAt": posted_at, "Posts": posts}

    def all_new_customers(self, admin: str, limit: int = 200) -> list[dict]:
        with self._tx(write=False) as con:
            rows = con.execute("SELECT seq, guid, code, name, created_at, result, error FROM new_customers "
                               "WHERE admin=? ORDER BY seq DESC LIMIT ?", (admin, limit)).fetchall()
        keys = ("Sequence", "CustomerGuid", "CustomerCode", "CustomerName", "CreatedAt", "Result", "Error")
        return [dict(zip(keys, row)) for row in rows]

    def events(self, admin: str, after: int = 0) -> list[dict]:
        with self._tx(write=False) as con:
            rows = con.execute("SELECT id, at, kind, detail FROM events WHERE admin=? AND id>? ORDER BY id",
                               (admin, after)).fetchall()
        return [{"id": i, "at": at, "kind": kind, **json.loads(detail)} for i, at, kind, detail in rows]
