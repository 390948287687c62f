"""Vectorized value rules of SPEC §3: text cleanup, booleans, decimals, dates, GUIDs, languages.

Every parser takes a pandas string Series (trimmed, missing = NA) and returns
``(parsed, invalid_mask)``; the caller turns ``invalid_mask`` into warnings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from monitor_pipeline.lib.booleans import FALSE_WORDS, TRUE_WORDS

_DECIMAL = r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)"
# Python's \s (str.isspace) as an RE2 class, so Arrow's regex kernels split on the same white space as ``re``
_WS = r"\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
WS, NON_WS = f"[{_WS}]", f"[^{_WS}]"
_DATE = (r"^(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})"
         r"(?:[T ](?P<h>[0-9]{2}):(?P<mi>[0-9]{2})(?::(?P<s>[0-9]{2})(?:[.,][0-9]+)?)?" + WS
         + r"*(?P<tz>Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?$")
_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_STR = pd.Series([], dtype="str").dtype
_GUID = r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}"


def clean_array(arr):
    """Trim; empty -> missing (Arrow strings; the array itself when that changes nothing)."""
    if arr.null_count == len(arr):
        return arr
    col = pc.utf8_trim_whitespace(arr)
    if pc.all(pc.equal(pc.binary_length(col), pc.binary_length(arr))).as_py() is not False:
        col = arr
    empty = pc.equal(col, "")
    if pc.any(empty).as_py():
        col = pc.if_else(empty, pa.scalar(None, col.type), col)
    return col


def clean(series: pd.Series) -> pd.Series:
    """Trim; empty -> missing. Result dtype: pandas ``str`` (missing = NaN)."""
    return series_of(clean_array(arrow_of(series)), series.index)


def clean_table(table: pa.Table, columns) -> pd.DataFrame:
    """``clean`` of the string ``columns`` done in Arrow, then the table as a frame whose text columns
    are pandas ``str`` (no detour through Python objects)."""
    for name in columns:
        i = table.schema.get_field_index(name)
        raw = table.column(i)
        col = clean_array(raw)
        if col is not raw:
            table = table.set_column(i, name, col)
    return table.to_pandas(types_mapper={pa.string(): _STR, pa.large_string(): _STR}.get)


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
    """ISO date / date-time or ``YYYY-MM-DD HH:MM[:SS]`` -> ``YYYY-MM-DDTHH:MM:SS[+HH:MM]`` (years 0001-9999;
    fractions of a second are dropped; ``Z``, ``+HH`` and ``+HHMM`` become ``+HH:MM``)."""
    parts = pc.extract_regex(arrow_of(s), _DATE)
    field = {k: pc.struct_field(parts, k) for k in ("y", "mo", "d", "h", "mi", "s", "tz")}

    def number(k):
        text = pc.if_else(pc.equal(field[k], ""), pa.scalar("0", field[k].type), field[k])
        return pc.cast(text, pa.int64()).to_numpy(zero_copy_only=False)

    matched = parts.is_valid().to_numpy(zero_copy_only=False)
    y, mo, d, h, mi, sec = (np.nan_to_num(number(k)).astype(np.int64) for k in ("y", "mo", "d", "h", "mi", "s"))
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    days = _DAYS[np.clip(mo, 0, 12)] + ((mo == 2) & leap)
    ok = matched & (y >= 1) & (mo >= 1) & (mo <= 12) & (d >= 1) & (d <= days) & (h < 24) & (mi < 60) & (sec < 60)

    def two(k):
        return pc.if_else(pc.equal(field[k], ""), pa.scalar("00", field[k].type), field[k])

    tz = pc.replace_substring_regex(field["tz"], r"^Z$", "+00:00")
    tz = pc.replace_substring_regex(tz, r"^([+-][0-9]{2})$", r"\1:00")
    tz = pc.replace_substring_regex(tz, r"^([+-][0-9]{2})([0-9]{2})$", r"\1:\2")
    t = field["y"].type

    def lit(x):
        return pa.scalar(x, t)
    text = pc.binary_join_element_wise(field["y"], lit("-"), field["mo"], lit("-"), field["d"], lit("T"), two("h"),
                                       lit(":"), two("mi"), lit(":"), two("s"), tz, lit(""))
    text = pc.if_else(pa.array(ok), text, pa.scalar(None, text.type))
    return series_of(text, s.index), pd.Series(s.notna().to_numpy(bool) & ~ok, index=s.index)


def parse_guid(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    low = s.str.lower().str.replace(r"^urn:uuid:", "", regex=True).str.replace(r"^\{(.*)\}$", r"\1", regex=True)
    ok = low.str.fullmatch(_GUID).fillna(False).astype(bool)
    hexes = low.where(ok).str.replace("-", "", regex=False)
    canon = (hexes.str[0:8] + "-" + hexes.str[8:12] + "-" + hexes.str[12:16] + "-" + hexes.str[16:20] + "-"
             + hexes.str[20:32])
    return canon, s.notna() & ~ok


# the typed customer columns (SPEC §3), in the order their warnings come: parser, and what an
# invalid value is not (used by customers.xml and extraCustomerData.csv alike)
TYPED = {"VatLiable": (parse_bool, "boolean"), "HidePrices": (parse_bool, "boolean"),
         "Discount": (parse_decimal, "decimal"), "Sysmodified": (parse_datetime, "date"),
         "CustomerGuid": (parse_guid, "GUID")}


def map_language(s: pd.Series, language_map: dict[str, str]) -> pd.Series:
    """Mapped by the (upper-cased) code; an unmapped code is kept as it is."""
    mapped = s.str.upper().map(language_map)
    return mapped.astype("str").where(mapped.notna(), s)


def first_present(*series: pd.Series) -> pd.Series:
    """Per row the first value that is not missing (``series`` share one index)."""
    first = series[0]
    if all(isinstance(s.array, pd.arrays.ArrowStringArray) and s.index.equals(first.index) for s in series):
        return series_of(pc.coalesce(*(arrow_of(s) for s in series)), first.index)
    out = first
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


def arrow_of(s: pd.Series) -> pa.ChunkedArray:
    """The Arrow strings behind a text Series (missing = null)."""
    if not isinstance(s.array, pd.arrays.ArrowStringArray):
        s = s.astype("str")
    arr = s.array.__arrow_array__()
    return arr


def series_of(arr, index) -> pd.Series:
    """A pandas ``str`` Series over Arrow strings (no copy)."""
    if isinstance(arr, pa.Array):
        arr = pa.chunked_array([arr], arr.type)
    return pd.Series(pd.arrays.ArrowStringArray(arr, dtype=_STR), index=index)


def realign(s: pd.Series, index) -> pd.Series:
    """The values of text Series ``s``, in order, under ``index`` (Arrow strings are not converted)."""
    if not isinstance(s.array, pd.arrays.ArrowStringArray):
        s = s.astype("str")
    return pd.Series(s.array, index=index)


def lookup(s: pd.Series, table: dict[str, str]) -> pd.Series:
    """``table[value]`` per value (missing where the value is not a key), in Arrow."""
    arr = arrow_of(s)
    at = pc.index_in(arr, value_set=pa.array(list(table), arr.type))
    return series_of(pa.array(list(table.values()), arr.type).take(at), s.index)


def bool_mask(s: pd.Series) -> np.ndarray:
    return s.fillna(False).astype(bool).to_numpy()
