"""``normalize_customers``: customers.xml -> customer, address, contact, dashboard frames (SPEC §3/§4)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from .addresses import build_addresses, clean_frame
from .columns import (ADDRESS_COLUMNS, ADDRESS_FIELDS, ADDRESS_PARTS, ADDRESS_PREFIXES, BOOLEAN_COLUMNS,
                      CONTACT_COLUMNS, CONTACT_FIELDS, CUSTOMER_COLUMNS, CUSTOMER_FIELDS, CUSTOMER_SOURCES,
                      DASHBOARD_COLUMNS, FLOAT_COLUMNS, REJECTED_COLUMNS)
from .contacts import build_contacts
from .extra_data import merge_extra_data, read_extra_data
from .mapping import clean, first_present, map_language, parse_bool, parse_datetime, parse_decimal, parse_guid, to_object
from .parse import parse_customers_xml
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


def normalize_customers(source: str | Path | BinaryIO | bytes,
                        settings: NormalizeSettings | None = None) -> NormalizedCustomers:
    """Parse and normalize customers.xml. Raises CustomersXmlError when the file cannot be used at all
    (SPEC §4) and ExtraDataError when extraCustomerData.csv is unreadable; row-level problems are
    reported in ``rejected`` / ``warnings``."""
    settings = settings or NormalizeSettings()
    extra = read_extra_data(settings.extra_data)
    language_map = settings.merged_language_map()
    raw, _name = parse_customers_xml(source)
    warnings = WarningLog()

    c = raw.customers.to_pandas()
    c = c.set_index(c["@pos"].to_numpy())
    c = clean_frame(c, CUSTOMER_FIELDS)

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
    c = c[~bad]
    dup = c["customercode"].duplicated(keep="last")
    if dup.any():
        d = c[dup]
        warnings.add(d["customercode"], pd.Series(True, index=d.index), "CustomerCode",
                     "duplicated CustomerCode: the customer at position " + d["@pos"].astype("str")
                     + " (line " + d["@line"].astype("str") + ") is ignored, the last occurrence is kept")
        c = c[~dup.to_numpy()]

    codes = c["customercode"]
    cust = pd.DataFrame(index=c.index)
    for col, src in CUSTOMER_SOURCES.items():
        cust[col] = c[src]
    for col, parser, what in (("VatLiable", parse_bool, "boolean"), ("HidePrices", parse_bool, "boolean"),
                              ("Discount", parse_decimal, "decimal"), ("Sysmodified", parse_datetime, "date"),
                              ("CustomerGuid", parse_guid, "GUID")):
        values, invalid = parser(cust[col])
        warnings.invalid(codes, cust[col], invalid, col, CUSTOMER_SOURCES[col], what)
        cust[col] = values
    cust["LanguageCode"] = map_language(cust["LanguageCode"], language_map)
    cust["DeliveryMethod"] = first_present(c["termsofdelivery"], c["deliverymethod"])
    if settings.default_action_price_list_code:
        cust["ActionPriceList"] = cust["ActionPriceList"].fillna(settings.default_action_price_list_code)
    cust = cust[CUSTOMER_COLUMNS]
    if extra is not None:
        cust = merge_extra_data(cust, extra, item_filter=settings.customer_item_filter,
                                language_map=language_map, warnings=warnings)

    ctx = c[["countrycode", "contactemail", "contactphone", "contactfax", "contactfullname", *prefix_cols]].copy()
    ctx["CustomerCode"], ctx["LanguageCode"] = cust["CustomerCode"], cust["LanguageCode"]

    addr_raw = clean_frame(raw.addresses.to_pandas(), ADDRESS_FIELDS)
    cont_raw = clean_frame(raw.contacts.to_pandas(), CONTACT_FIELDS)
    addresses = build_addresses(addr_raw, ctx, warnings)
    contacts = build_contacts(cont_raw, ctx, warnings)

    # dashboards: Base64 -> bytes
    dash_codes, dash_bytes = [], []
    for code_value, text in zip(codes[c["customerdashboard"].notna()].tolist(),
                                c["customerdashboard"].dropna().tolist()):
        try:
            dash_bytes.append(base64.b64decode("".join(text.split()), validate=True))
            dash_codes.append(code_value)
        except (binascii.Error, ValueError):
            warnings.one(code_value, "Dashboard", "<customerdashboard> is not valid Base64; no dashboard")
    dashboards = pd.DataFrame({"CustomerCode": pd.Series(dash_codes, dtype=object),
                               "Dashboard": pd.Series(dash_bytes, dtype=object)}, columns=DASHBOARD_COLUMNS)

    return NormalizedCustomers(
        customers=_finish(cust, CUSTOMER_COLUMNS),
        addresses=_finish(addresses, ADDRESS_COLUMNS),
        contacts=_finish(contacts, CONTACT_COLUMNS),
        dashboards=dashboards,
        rejected=rejected.reset_index(drop=True),
        warnings=warnings.frame(),
        source_format=source_format,
    )
