"""extraCustomerData.csv (SPEC §3 Extra customer data): read it and merge it over the customers."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from .columns import CUSTOMER_COLUMNS
from .errors import ExtraDataError
from .mapping import TYPED, clean, map_language
from .warnings import WarningLog

FIELD = "extraCustomerData.csv"
_ALIASES = {c.lower(): c for c in CUSTOMER_COLUMNS} | {"fixeditemfilter": "ItemFilter"}


def read_extra_data(source: str | Path | bytes | None) -> pd.DataFrame | None:
    """The CSV as an all-string frame with its own headers; None when there is no file.

    ``source``: bytes (content), a path, or a str that is a path unless it contains a line break.
    """
    if source is None:
        return None
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), FIELD
    elif isinstance(source, str) and ("\n" in source or "\r" in source):
        data, name = source.encode("utf-8"), FIELD
    else:
        path = Path(source)
        if not path.exists():
            return None
        try:
            data, name = path.read_bytes(), str(path)
        except OSError as exc:
            raise ExtraDataError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    header = text.split("\n", 1)[0]
    delimiter = ";" if header.count(";") >= header.count(",") and ";" in header else ","
    try:
        frame = pd.read_csv(io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False,
                            quoting=csv.QUOTE_MINIMAL, skip_blank_lines=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise ExtraDataError(f"{name}: not a readable CSV file: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if "customercode" not in {c.lower() for c in frame.columns}:
        raise ExtraDataError(f"{name}: the header has no CustomerCode column")
    return frame


def merge_extra_data(customers: pd.DataFrame, extra: pd.DataFrame, *, item_filter: bool,
                     language_map: dict[str, str], warnings: WarningLog) -> pd.DataFrame:
    """Non-empty cells overwrite; typed cells are parsed by the customers.xml rules (an invalid one
    is reported and leaves the customers.xml value in place)."""
    columns: dict[str, str] = {}
    for col in extra.columns:
        target = _ALIASES.get(col.lower())
        if target is None:
            warnings.one(None, col, f"unknown column in {FIELD}; ignored")
        elif target == "ItemFilter" and not item_filter:
            warnings.one(None, col, f"{col} in {FIELD} ignored: MONITOR_CUSTOMER_ITEM_FILTER is off")
        elif target != "CustomerCode":
            columns[target] = col
    code_col = next(c for c in extra.columns if c.lower() == "customercode")
    extra = extra.assign(**{code_col: clean(extra[code_col])})
    extra = extra[extra[code_col].notna()].drop_duplicates(code_col, keep="last").reset_index(drop=True)
    codes = extra[code_col]
    unknown = ~codes.isin(customers["CustomerCode"])
    warnings.add(codes, unknown, FIELD, "CustomerCode not in customers.xml; row ignored")
    extra = extra[~unknown.to_numpy()].reset_index(drop=True)
    codes = extra[code_col]

    out = customers.copy()
    at = pd.Index(codes).get_indexer(out["CustomerCode"])
    found = at >= 0
    for target, col in columns.items():
        raw = clean(extra[col])
        parser, what = TYPED.get(target, (None, ""))
        if parser is not None:
            values, bad = parser(raw)
        else:
            values = map_language(raw, language_map) if target == "LanguageCode" else raw
            bad = pd.Series(False, index=raw.index)
        if bad.any():
            warnings.add(codes, bad, target, f"{FIELD} {col}: '" + raw.astype("str") + f"' is not a valid {what}; ignored")
        usable = (raw.notna() & ~bad).to_numpy(bool)
        take = np.zeros(len(out), dtype=bool)
        take[found] = usable[at[found]]
        if take.any():
            picked = values.iloc[at[take]].to_numpy()
            column = out[target].copy()
            column.iloc[np.flatnonzero(take)] = picked
            out[target] = column
    return out
