"""Vectorized value rules of SPEC §3: text cleanup, booleans, decimals, dates, GUIDs, languages.

Every parser takes a pandas string Series (trimmed, missing = NA) and returns
``(parsed, invalid_mask)``; the caller turns ``invalid_mask`` into warnings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from monitor_pipeline.lib.booleans import FALSE_WORDS, TRUE_WORDS

_DECIMAL = r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)"
_DATE = (r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"
         r"(?:[T ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,]\d+)?)?\s*(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?)?")
_GUID = r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}"


def clean(series: pd.Series) -> pd.Series:
    """Trim; empty -> missing. Result dtype: pandas ``str`` (missing = NaN)."""
    s = series.astype("str").str.strip()
    return s.mask(s == "")


def parse_bool(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    low = s.str.lower()
    true, false = low.isin(TRUE_WORDS).to_numpy(bool), low.isin(FALSE_WORDS).to_numpy(bool)
    values = pd.array(true, dtype="boolean")
    values[~(true | false)] = pd.NA
    return pd.Series(values, index=s.index), s.notna() & ~pd.Series(true | false, index=s.index)


def parse_decimal(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    ok = s.str.fullmatch(_DECIMAL).fillna(False).astype(bool)
    values = pd.to_numeric(s.where(ok).str.replace(",", ".", regex=False), errors="coerce").astype("float64")
    return values, s.notna() & ~ok


def parse_datetime(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """ISO date / date-time or ``YYYY-MM-DD HH:MM[:SS]`` -> ``YYYY-MM-DDTHH:MM:SS[+HH:MM]``."""
    parts = s.str.extract("^" + _DATE + "$")
    nums = {k: pd.to_numeric(parts[k], errors="coerce") for k in ("y", "mo", "d", "h", "mi", "s")}
    stamp = pd.to_datetime(pd.DataFrame({"year": nums["y"], "month": nums["mo"], "day": nums["d"],
                                         "hour": nums["h"].fillna(0), "minute": nums["mi"].fillna(0),
                                         "second": nums["s"].fillna(0)}), errors="coerce")
    ok = stamp.notna() & nums["h"].fillna(0).lt(24) & nums["mi"].fillna(0).lt(60) & nums["s"].fillna(0).lt(60)
    tz = parts["tz"].astype("str")
    tz = tz.mask(tz == "Z", "+00:00")
    tz = tz.where(~tz.str.fullmatch(r"[+-]\d{2}").fillna(False).astype(bool), tz + ":00")
    tz = tz.where(~tz.str.fullmatch(r"[+-]\d{4}").fillna(False).astype(bool), tz.str[:3] + ":" + tz.str[3:])
    text = stamp.dt.strftime("%Y-%m-%dT%H:%M:%S").astype("str")
    text = text.where(tz.isna(), text + tz)
    text = text.where(ok)
    return text, s.notna() & ~ok


def parse_guid(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    low = s.str.lower().str.replace(r"^urn:uuid:", "", regex=True).str.replace(r"^\{(.*)\}$", r"\1", regex=True)
    ok = low.str.fullmatch(_GUID).fillna(False).astype(bool)
    hexes = low.where(ok).str.replace("-", "", regex=False)
    canon = (hexes.str[0:8] + "-" + hexes.str[8:12] + "-" + hexes.str[12:16] + "-" + hexes.str[16:20] + "-"
             + hexes.str[20:32])
    return canon, s.notna() & ~ok


def map_language(s: pd.Series, language_map: dict[str, str]) -> pd.Series:
    """Mapped by the (upper-cased) code; an unmapped code is kept as it is."""
    mapped = s.str.upper().map(language_map)
    return mapped.astype("str").where(mapped.notna(), s)


def first_present(*series: pd.Series) -> pd.Series:
    out = series[0]
    for other in series[1:]:
        out = out.where(out.notna(), other)
    return out


def to_object(s: pd.Series) -> pd.Series:
    """String column for the output frames: object dtype, ``None`` for missing."""
    values = s.array
    if isinstance(values, pd.arrays.ArrowStringArray):
        return pd.Series(arrow_to_objects(values.__arrow_array__()), index=s.index, dtype=object)
    arr = s.astype(object).to_numpy(copy=True)
    arr[pd.isna(arr)] = None
    return pd.Series(arr, index=s.index, dtype=object)


def arrow_to_objects(arr) -> np.ndarray:
    """An Arrow string/binary (chunked) array as an object array of str/bytes and ``None``. Equal values
    share one Python object (far less memory for repetitive columns, and fewer objects to make)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    if isinstance(arr, pa.ChunkedArray):
        if arr.num_chunks != 1:        # per chunk: no offset overflow from combining huge string chunks
            parts = [arrow_to_objects(chunk) for chunk in arr.chunks]
            return np.concatenate(parts) if parts else np.empty(0, dtype=object)
        arr = arr.chunk(0)
    if len(arr) == 0:
        return np.empty(0, dtype=object)
    enc = pc.dictionary_encode(arr)
    uniques = enc.dictionary.to_numpy(zero_copy_only=False)
    if len(uniques) * 4 > len(arr) * 3:      # mostly distinct values: sharing gains little
        return arr.to_numpy(zero_copy_only=False)
    lookup = np.empty(len(uniques) + 1, dtype=object)
    lookup[:-1] = uniques
    lookup[-1] = None
    idx = enc.indices.fill_null(len(uniques)).to_numpy(zero_copy_only=False)
    return lookup[idx]


def bool_mask(s: pd.Series) -> np.ndarray:
    return s.fillna(False).astype(bool).to_numpy()
