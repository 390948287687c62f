"""``normalize_customers``: customers.xml -> customer, address, contact, dashboard frames (SPEC §3/§4)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .addresses import build_addresses
from .columns import (ADDRESS_COLUMNS, ADDRESS_FIELDS, ADDRESS_PARTS, ADDRESS_PREFIXES, BOOLEAN_COLUMNS,
                      CONTACT_COLUMNS, CONTACT_FIELDS, CUSTOMER_COLUMNS, CUSTOMER_FIELDS, CUSTOMER_SOURCES,
                      DASHBOARD_COLUMNS, FLOAT_COLUMNS, REJECTED_COLUMNS)
from .contacts import build_contacts
from .extra_data import merge_extra_data, read_extra_data
from .mapping import TYPED, arrow_to_objects, clean_array, clean_table, first_present, map_language, to_object
from .parse import SplitParts, parse_customers_xml
from .settings import NormalizeSettings
from .warnings import WarningLog


@dataclass
class NormalizedCustomers:
    """Frames of SPEC §3. String columns are ``object`` dtype with ``None`` for missing (never NaN);
    VatLiable/HidePrices/IsMainAddress/IsMainContactPerson are nullable ``boolean``; Discount is
    ``float64`` (NaN = missing); Dashboard holds ``bytes``."""

    customers: pd.DataFrame
    addresses: pd.DataFrame
    contacts: pd.DataFrame
    dashboards: pd.DataFrame
    rejected: pd.DataFrame
    warnings: pd.DataFrame
    source_format: dict = field(default_factory=dict)


def _release() -> None:
    """Give the memory of freed Arrow buffers (pandas ``str`` columns too) back to the system: Arrow's
    allocator keeps it otherwise, and the Python objects made next cannot use it."""
    try:
        pa.default_memory_pool().release_unused()
    except Exception:                              # noqa: BLE001 - only an optimisation
        pass


def _finish(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    out = {}
    for col in columns:
        s = frame[col].reset_index(drop=True)
        if col in BOOLEAN_COLUMNS:
            out[col] = s.astype("boolean")
        elif col in FLOAT_COLUMNS:
            out[col] = s.astype("float64")
        else:
            out[col] = to_object(s)
    return pd.DataFrame(out, columns=columns)


@dataclass
class _Part:
    """The mapped frames of some customers (the whole file, or one half of a split parse).

    ``rejected`` and ``dups`` (customers dropped as duplicates: customercode, @pos, @line) hold the
    positions and lines as parsed, before any shift; ``warnings`` has a ``stage`` column (the step
    that made the warning) so the warnings of two halves can be interleaved as one pass makes them.
    """

    customers: pd.DataFrame
    addresses: pd.DataFrame
    contacts: pd.DataFrame
    dashboards: pd.DataFrame
    rejected: pd.DataFrame
    dups: pd.DataFrame
    warnings: pd.DataFrame
    source_format: dict


# warning stages, in the order one pass reports them
_STAGE_DUP, _STAGE_EXTRA, _STAGE_ADDRESSES, _STAGE_CONTACTS, _STAGE_DASHBOARDS = 0, 6, 7, 8, 9


def _map_part(raw, *, language_map: dict[str, str], default_action_price_list_code: str | None,
              drop_codes=None, extra: pd.DataFrame | None = None, customer_item_filter: bool = False) -> _Part:
    """Map the raw tables of ``raw`` (a RawCustomers, whose tables are released here as soon as they
    are converted). ``drop_codes``: codes that occur again later in the file (the other half), so
    their customers here are duplicates (or a function returning them, called when they are needed)."""
    warnings = WarningLog()

    c = clean_table(raw.customers, CUSTOMER_FIELDS)
    raw.customers = None
    c = c.set_index(c["@pos"].to_numpy())

    prefix_cols = [p + part for p in ADDRESS_PREFIXES for part in ADDRESS_PARTS]
    has_prefix = c[prefix_cols].notna().any(axis=1).to_numpy(bool)
    has_nodes = c["@nodes"].fillna(False).astype(bool).to_numpy()
    source_format = {"flat": int((~has_nodes).sum()), "nested": int((has_nodes & ~has_prefix).sum()),
                     "mixed": int((has_nodes & has_prefix).sum())}

    # mandatory fields -> rejected; duplicated codes -> the last occurrence is kept
    code, name = c["customercode"], c["customername"]
    no_code, no_name = code.isna().to_numpy(bool), name.isna().to_numpy(bool)
    reason = np.where(no_code & no_name, "missing CustomerCode and CustomerName",
                      np.where(no_code, "missing CustomerCode", "missing CustomerName"))
    bad = no_code | no_name
    rejected = pd.DataFrame({"CustomerCode": to_object(code[bad]).to_numpy(),
                             "Position": c["@pos"].to_numpy()[bad].astype("int64"),
                             "Line": pd.array(c["@line"].to_numpy()[bad], dtype="Int64"),
                             "Reason": pd.Series(reason[bad], dtype=object)}, columns=REJECTED_COLUMNS)
    rejected["CustomerCode"] = to_object(code[bad].reset_index(drop=True))
    if bad.any():
        c = c[~bad]
    dup = c["customercode"].duplicated(keep="last")
    if callable(drop_codes):
        drop_codes = drop_codes()
    if drop_codes is not None and len(drop_codes):
        dup |= c["customercode"].isin(drop_codes)
    dups = c.loc[dup.to_numpy(), ["customercode", "@pos", "@line"]]
    if dup.any():
        c = c[~dup.to_numpy()]

    codes = c["customercode"]
    cust = pd.DataFrame(index=c.index)
    for col, src in CUSTOMER_SOURCES.items():
        cust[col] = c[src]
    for stage, (col, (parser, what)) in enumerate(TYPED.items(), start=1):
        warnings.stage = stage
        values, invalid = parser(cust[col])
        warnings.invalid(codes, cust[col], invalid, col, CUSTOMER_SOURCES[col], what)
        cust[col] = values
    cust["LanguageCode"] = map_language(cust["LanguageCode"], language_map)
    cust["DeliveryMethod"] = first_present(c["termsofdelivery"], c["deliverymethod"])
    if default_action_price_list_code:
        cust["ActionPriceList"] = cust["ActionPriceList"].fillna(default_action_price_list_code)
    cust = cust[CUSTOMER_COLUMNS]
    if extra is not None:
        warnings.stage = _STAGE_EXTRA
        cust = merge_extra_data(cust, extra, item_filter=customer_item_filter,
                                language_map=language_map, warnings=warnings)

    ctx = c[["countrycode", "contactemail", "contactphone", "contactfax", "contactfullname", *prefix_cols]].copy()
    ctx["CustomerCode"], ctx["LanguageCode"] = cust["CustomerCode"], cust["LanguageCode"]
    dash_source = c["customerdashboard"]
    del c
    _release()

    addr_raw = clean_table(raw.addresses, ADDRESS_FIELDS)
    raw.addresses = None
    warnings.stage = _STAGE_ADDRESSES
    addresses = _finish(build_addresses(addr_raw, ctx, warnings), ADDRESS_COLUMNS)
    del addr_raw
    _release()
    cont_raw = clean_table(raw.contacts, CONTACT_FIELDS)
    raw.contacts = None
    warnings.stage = _STAGE_CONTACTS
    contacts = _finish(build_contacts(cont_raw, ctx, warnings), CONTACT_COLUMNS)
    del cont_raw, ctx
    _release()

    # dashboards: Base64 -> bytes
    warnings.stage = _STAGE_DASHBOARDS
    dash_codes, dash_bytes = [], []
    for code_value, text in zip(codes[dash_source.notna()].tolist(), dash_source.dropna().tolist()):
        try:
            dash_bytes.append(base64.b64decode("".join(text.split()), validate=True))
            dash_codes.append(code_value)
        except (binascii.Error, ValueError):
            warnings.one(code_value, "Dashboard", "<customerdashboard> is not valid Base64; no dashboard")
    dashboards = pd.DataFrame({"CustomerCode": pd.Series(dash_codes, dtype=object),
                               "Dashboard": pd.Series(dash_bytes, dtype=object)}, columns=DASHBOARD_COLUMNS)

    return _Part(customers=_finish(cust, CUSTOMER_COLUMNS), addresses=addresses, contacts=contacts,
                 dashboards=dashboards, rejected=rejected, dups=dups, warnings=warnings.staged(),
                 source_format=source_format)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Row-wise concat with a fresh RangeIndex; empty pieces are left out (their dtypes are the same)."""
    used = [f for f in frames if len(f)] or frames[:1]
    if len(used) == 1:
        return used[0].reset_index(drop=True)
    return pd.concat(used, ignore_index=True)


def _assemble(parts: list[_Part], pos_shifts: list[int], line_shifts: list[int]) -> NormalizedCustomers:
    """One result from the parts of consecutive stretches of the file (shifts: the parsed positions
    and lines of each part -> those of the whole file)."""
    rejected = []
    for part, dp, dl in zip(parts, pos_shifts, line_shifts):
        r = part.rejected
        if len(r) and (dp or dl):
            r = r.assign(Position=r["Position"] + dp, Line=r["Line"] + dl)
        rejected.append(r)
    warnings = WarningLog()
    dups = [p.dups.assign(**{"@pos": p.dups["@pos"] + dp, "@line": p.dups["@line"] + dl}) if dp or dl else p.dups
            for p, dp, dl in zip(parts, pos_shifts, line_shifts)]
    d = _concat(dups) if len(dups) > 1 else dups[0]
    if len(d):
        warnings.add(d["customercode"], pd.Series(True, index=d.index), "CustomerCode",
                     "duplicated CustomerCode: the customer at position " + d["@pos"].astype("str")
                     + " (line " + d["@line"].astype("str") + ") is ignored, the last occurrence is kept")
    staged = [p.warnings for p in parts if len(p.warnings)]
    if staged:
        w = staged[0] if len(staged) == 1 else pd.concat(staged, ignore_index=True)
        if len(staged) > 1:
            w = w.sort_values("stage", kind="stable")
        warnings.add_frame(w)
    source_format = {k: sum(p.source_format[k] for p in parts) for k in parts[0].source_format}
    big = {}
    for name in ("customers", "addresses", "contacts", "dashboards"):
        # one frame at a time, each piece released once joined: less memory at the peak
        pieces = []
        for p in parts:
            piece = getattr(p, name)
            setattr(p, name, None)
            pieces.append(piece() if callable(piece) else piece)
        big[name] = _concat(pieces)
        del pieces, piece
        _release()
    return NormalizedCustomers(**big, rejected=_concat(rejected), warnings=warnings.frame(),
                               source_format=source_format)


def normalize_customers(source: str | Path | BinaryIO | bytes,
                        settings: NormalizeSettings | None = None) -> NormalizedCustomers:
    """Parse and normalize customers.xml. Raises CustomersXmlError when the file cannot be used at all
    (SPEC §4) and ExtraDataError when extraCustomerData.csv is unreadable; row-level problems are
    reported in ``rejected`` / ``warnings``.

    A large file parsed in two processes (see :mod:`.split`) is also mapped per half, each half in
    its own process; only duplicates across the halves and the concatenation are done here. With
    extra customer data (which may change LanguageCode, hence address countries) the halves' raw
    tables are mapped here in one go."""
    settings = settings or NormalizeSettings()
    extra = read_extra_data(settings.extra_data)
    language_map = settings.merged_language_map()
    options = None
    if extra is None:
        options = {"language_map": language_map,
                   "default_action_price_list_code": settings.default_action_price_list_code}
    raw, _name = parse_customers_xml(source, options)
    if isinstance(raw, SplitParts):
        part_a, part_b, n_a, lines = raw.part_a, raw.part_b, raw.n_a, raw.lines
        del raw
        return _assemble([part_a, part_b], [0, n_a], [0, lines])
    part = _map_part(raw, language_map=language_map,
                     default_action_price_list_code=settings.default_action_price_list_code,
                     extra=extra, customer_item_filter=settings.customer_item_filter)
    del raw
    return _assemble([part], [0], [0])


# --- transport of a mapped half between processes (Arrow IPC) -------------------------------------

def _schema(columns: list[str], binary: set[str] = frozenset(), ints: dict | None = None):
    import pyarrow as pa
    fields = []
    for col in columns:
        if col in BOOLEAN_COLUMNS:
            t = pa.bool_()
        elif col in FLOAT_COLUMNS:
            t = pa.float64()
        elif col in binary:
            t = pa.binary()
        elif ints and col in ints:
            t = ints[col]
        else:
            t = pa.string()
        fields.append(pa.field(col, t))
    return pa.schema(fields)


def _frame_specs():
    import pyarrow as pa
    return {
        "customers": _schema(CUSTOMER_COLUMNS),
        "addresses": _schema(ADDRESS_COLUMNS),
        "contacts": _schema(CONTACT_COLUMNS),
        "dashboards": _schema(DASHBOARD_COLUMNS, binary={"Dashboard"}),
        "rejected": _schema(REJECTED_COLUMNS, ints={"Position": pa.int64(), "Line": pa.int64()}),
        "dups": _schema(["customercode", "@pos", "@line"], ints={"@pos": pa.int64(), "@line": pa.int64()}),
        "warnings": _schema(["CustomerCode", "Field", "Message", "stage"], ints={"stage": pa.int64()}),
    }


def part_to_payload(part: _Part) -> dict:
    """The part as Arrow IPC stream bytes per frame (compact and fast to pickle)."""
    import pyarrow as pa
    out = {"source_format": part.source_format}
    for name, schema in _frame_specs().items():
        frame = getattr(part, name)
        setattr(part, name, None)
        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        del frame
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, schema) as writer:
            writer.write_table(table)
        del table
        out[name] = sink.getvalue().to_pybytes()
    return out


def _to_frame(table, columns: list[str]) -> pd.DataFrame:
    out = {}
    for col in columns:
        arr = table.column(col)
        if col in BOOLEAN_COLUMNS:
            out[col] = pd.array(arr.to_numpy(zero_copy_only=False), dtype="boolean")
        elif col in FLOAT_COLUMNS:
            out[col] = arr.to_numpy(zero_copy_only=False).astype("float64")
        else:
            out[col] = pd.Series(arrow_to_objects(arr), dtype=object)
    return pd.DataFrame(out, columns=columns)


def part_from_payload(payload: dict) -> _Part:
    """The inverse of ``part_to_payload``; the four big frames come as functions that decode them
    (and drop their bytes) when called."""
    import pyarrow as pa

    def table(name):
        data = payload.pop(name)
        return pa.ipc.open_stream(data).read_all()

    frames = {}
    t = table("rejected")
    frames["rejected"] = pd.DataFrame({
        "CustomerCode": pd.Series(t.column("CustomerCode").to_numpy(zero_copy_only=False), dtype=object),
        "Position": t.column("Position").to_numpy().astype("int64"),
        "Line": pd.array(t.column("Line").to_pandas(), dtype="Int64"),
        "Reason": pd.Series(t.column("Reason").to_numpy(zero_copy_only=False), dtype=object)},
        columns=REJECTED_COLUMNS)
    frames["dups"] = table("dups").to_pandas()
    t = table("warnings")
    frames["warnings"] = pd.DataFrame({
        "CustomerCode": pd.Series(t.column("CustomerCode").to_numpy(zero_copy_only=False), dtype=object),
        "Field": pd.Series(t.column("Field").to_numpy(zero_copy_only=False), dtype=object),
        "Message": pd.Series(t.column("Message").to_numpy(zero_copy_only=False), dtype=object),
        "stage": t.column("stage").to_numpy()})
    for name in ("customers", "addresses", "contacts", "dashboards"):
        frames[name] = lambda name=name: _to_frame(table(name), _frame_specs()[name].names)
    return _Part(source_format=payload["source_format"], **frames)


def kept_codes(customers: pa.Table) -> list:
    """The distinct CustomerCodes of the raw customers that ``_map_part`` keeps (trimmed; not rejected
    for a missing code or name): what the other half of a split file needs to drop its duplicates."""
    code, name = (clean_array(customers.column(f)) for f in ("customercode", "customername"))
    return pc.unique(code.filter(pc.and_(pc.is_valid(code), pc.is_valid(name)))).to_pylist()


def map_half(raw, options: dict, drop_codes=None) -> _Part:
    """``_map_part`` with the options ``normalize_customers`` passes through the parse (no extra data)."""
    return _map_part(raw, language_map=options["language_map"],
                     default_action_price_list_code=options["default_action_price_list_code"],
                     drop_codes=drop_codes)
