"""Raw tables -> the mapped frames of SPEC §3 for a stretch of customers (a :class:`Part`).

Owns the mapping of one ``RawCustomers`` (the whole file, or one half of a split parse): rejected
and duplicated customers, the typed customer columns and their warnings, extra customer data,
addresses, contact persons and dashboards (``map_part``), plus what the two-process parse of
:mod:`.split` needs around it (``map_half``, ``kept_codes``). Putting the parts together is
``normalize``'s; moving a part between processes is ``split``'s.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .addresses import build_addresses
from .columns import (ADDRESS_COLUMNS, ADDRESS_FIELDS, ADDRESS_PARTS, ADDRESS_PREFIXES, BOOLEAN_COLUMNS,
                      CONTACT_COLUMNS, CONTACT_FIELDS, CUSTOMER_COLUMNS, CUSTOMER_FIELDS, CUSTOMER_SOURCES,
                      DASHBOARD_COLUMNS, FLOAT_COLUMNS, REJECTED_COLUMNS)
from .contacts import build_contacts
from .extra_data import merge_extra_data
from .mapping import TYPED, clean_array, clean_table, first_present, map_language, to_object
from .schema import RawCustomers
from .warnings import WarningLog


def release_memory() -> None:
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
class Part:
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


def map_part(raw: RawCustomers, *, language_map: dict[str, str], default_action_price_list_code: str | None,
             drop_codes=None, extra: pd.DataFrame | None = None, customer_item_filter: bool = False) -> Part:
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
    release_memory()

    addr_raw = clean_table(raw.addresses, ADDRESS_FIELDS)
    raw.addresses = None
    warnings.stage = _STAGE_ADDRESSES
    addresses = _finish(build_addresses(addr_raw, ctx, warnings), ADDRESS_COLUMNS)
    del addr_raw
    release_memory()
    cont_raw = clean_table(raw.contacts, CONTACT_FIELDS)
    raw.contacts = None
    warnings.stage = _STAGE_CONTACTS
    contacts = _finish(build_contacts(cont_raw, ctx, warnings), CONTACT_COLUMNS)
    del cont_raw, ctx
    release_memory()

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

    return Part(customers=_finish(cust, CUSTOMER_COLUMNS), addresses=addresses, contacts=contacts,
                dashboards=dashboards, rejected=rejected, dups=dups, warnings=warnings.staged(),
                source_format=source_format)


def kept_codes(customers: pa.Table) -> list:
    """The distinct CustomerCodes of the raw customers that ``map_part`` keeps (trimmed; not rejected
    for a missing code or name): what the other half of a split file needs to drop its duplicates."""
    code, name = (clean_array(customers.column(f)) for f in ("customercode", "customername"))
    return pc.unique(code.filter(pc.and_(pc.is_valid(code), pc.is_valid(name)))).to_pylist()


def map_half(raw: RawCustomers, options: dict, drop_codes=None) -> Part:
    """``map_part`` with the mapping options ``normalize_customers`` gives the two-process parse (no extra
    data): ``language_map`` and ``default_action_price_list_code``, JSON-able for the worker's command line."""
    return map_part(raw, language_map=options["language_map"],
                    default_action_price_list_code=options["default_action_price_list_code"],
                    drop_codes=drop_codes)
