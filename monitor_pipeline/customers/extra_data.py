"""extraCustomerData.csv (SPEC §3 Extra customer data): read it and merge it over the customers.

Shape of the file (what a data engineer may rely on):

* The first non-blank line is the header; blank lines (also ones of only spaces) are skipped.
* Every row has exactly as many fields as the header. A row with more or fewer is an error naming
  the file and the line, never a guess (pandas would take a surplus first field as the index and
  shift every value onto the wrong column).
* A header that ends with the delimiter (``CustomerCode;CustomerName;``, an empty last column name)
  means the file's lines are delimiter-terminated: that last, unnamed column is not a column. Every
  row must then end with the delimiter too (same field count as the header), and a value in the
  unnamed last field is an error. Any other empty column name is an error.
* A column name occurs once: names compare case-insensitively after trimming, and
  ``FixedItemFilter`` is the same column as ``ItemFilter``. A repeated one is an error (line of the
  header).
* A quoted field (``"…"``, ``""`` for a quote) may hold the delimiter and line breaks; a quote that is
  never closed is an error naming the line where its row starts.

The happy path is vectorized (Arrow's CSV reader); only when a row is bad is the file walked again
row by row, with the csv module, to name the physical line.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .columns import CUSTOMER_COLUMNS
from .errors import ExtraDataError
from .mapping import TYPED, clean, map_language
from .warnings import WarningLog, cut, quoted

FIELD = "extraCustomerData.csv"
_ALIASES = {c.lower(): c for c in CUSTOMER_COLUMNS} | {"fixeditemfilter": "ItemFilter"}
_STR = pd.Series([], dtype="str").dtype
_NEWLINE = re.compile(r"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"


def read_extra_data(source: str | Path | bytes | None) -> pd.DataFrame | None:
    """The CSV as an all-string frame with its own (trimmed) headers; None when there is no file.

    ``source``: bytes (content), a path, or a str that is a path unless it contains a line break.
    Raises ExtraDataError (with ``line``) for a file that cannot be read as the module docstring says.
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
            raise ExtraDataError(str(path), None, f"cannot be read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
        utf8 = data[len(_BOM):] if data.startswith(_BOM) else data
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
        utf8 = text.encode("utf-8")
    return _read(text, utf8, name)


def _delimiter(text: str) -> str:
    header = text.lstrip("\r\n \t").split("\n", 1)[0]
    return ";" if header.count(";") >= header.count(",") and ";" in header else ","


def _reader(text: str, delimiter: str, strict: bool = False):
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', doublequote=True,
                      strict=strict)


def _records(text: str, delimiter: str):
    """(first physical line, last physical line, fields) of every non-blank record, header included."""
    reader = _reader(text, delimiter)
    end = 0
    for fields in reader:
        start, end = end + 1, reader.line_num
        if not (fields == [] or (len(fields) == 1 and not fields[0].strip())):
            yield start, end, fields


def _check_names(name: str, line: int, fields: list[str]) -> tuple[list[str], bool]:
    """The column names, and whether the header ended with the delimiter (see the module docstring)."""
    names = [f.strip() for f in fields]
    terminated = len(names) > 1 and names[-1] == ""
    if terminated:
        names = names[:-1]
    seen: dict[tuple[str, str], int] = {}
    for i, col in enumerate(names):
        if not col:
            raise ExtraDataError(name, line, f"column {i + 1} of the header has no name")
        low = col.lower()
        key = ("column", _ALIASES[low]) if low in _ALIASES else ("unknown", low)
        if key in seen:
            first = names[seen[key]]
            alias = " (FixedItemFilter is another name for ItemFilter)" if first.lower() != low else ""
            raise ExtraDataError(name, line, f"column {i + 1} {cut(col)!r} repeats column {seen[key] + 1} "
                                               f"{cut(first)!r}{alias}; each column may occur once")
        seen[key] = i
    if ("column", "CustomerCode") not in seen:
        raise ExtraDataError(name, line, "the header has no CustomerCode column")
    return names, terminated


def _read(text: str, utf8: bytes, name: str) -> pd.DataFrame:
    delimiter = _delimiter(text)
    header_line, header_end, fields = next(_records(text, delimiter), (0, 0, []))
    if not fields:
        raise ExtraDataError(name, None, "is empty (no header row)")
    names, terminated = _check_names(name, header_line, fields)
    width = len(fields)
    if text.count('"') % 2:
        _refuse_unclosed_quote(text, name, delimiter)

    # the data after the header, as UTF-8 bytes, for Arrow (the header is at most a few lines)
    chars = 0
    for _ in range(header_end):
        match = _NEWLINE.search(text, chars)
        chars = match.end() if match else len(text)
    offset = len(text[:chars].encode("utf-8"))
    body = pa.py_buffer(utf8)[offset:]
    bad_rows: list = []

    def invalid(row) -> str:
        if not row.text.strip():
            return "skip"            # a line of spaces is a blank line
        bad_rows.append(row)
        return "error"

    columns = [f"c{i}" for i in range(width)]
    try:
        table = pacsv.read_csv(
            body,
            read_options=pacsv.ReadOptions(column_names=columns, use_threads=False,
                                           block_size=min(max(len(body) + 1, 1 << 20), (1 << 31) - 1)),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char='"', double_quote=True,
                                              newlines_in_values=True, ignore_empty_lines=True,
                                              invalid_row_handler=invalid),
            convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in columns},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except pa.ArrowInvalid as exc:
        if bad_rows:
            raise _wrong_width(text, name, delimiter, width, terminated) from None
        if len(body) == 0 or "Empty CSV file" in str(exc):
            table = pa.table({c: pa.array([], pa.string()) for c in columns})
        else:
            raise ExtraDataError(name, None, f"not a readable CSV file: {cut(str(exc))}") from None
    if terminated:
        last = pc.utf8_trim_whitespace(table.column(width - 1))
        filled = pc.not_equal(last, "").to_numpy(zero_copy_only=False)
        if filled.any():
            line = _line_of_row(text, delimiter, int(np.flatnonzero(filled)[0]))
            raise ExtraDataError(name, line, f"a value after the last column: the header ends with "
                                               f"'{delimiter}', so the field after its last name must stay empty")
        table = table.drop_columns([columns[-1]])
    frame = table.to_pandas(types_mapper={pa.string(): _STR, pa.large_string(): _STR}.get)
    frame.columns = names
    return frame


def _wrong_width(text: str, name: str, delimiter: str, width: int, terminated: bool) -> ExtraDataError:
    """The error for the first row whose field count differs from the header's, naming its line."""
    records = _records(text, delimiter)
    next(records, None)  # the header
    for line, _end, fields in records:
        if len(fields) != width:
            problem = f"{len(fields)} fields, but the header has {width}"
            if terminated:
                problem += f" (it ends with '{delimiter}', so every line must end with '{delimiter}' too)"
            elif len(fields) == width + 1 and fields[-1].strip() == "":
                problem += f" (a '{delimiter}' at the end of the line?)"
            return ExtraDataError(name, line, problem)
    return ExtraDataError(name, None, f"a row does not have the {width} fields of the header")


def _line_of_row(text: str, delimiter: str, row: int) -> int | None:
    """The line where data row ``row`` (0-based, blank lines not counted) starts."""
    records = _records(text, delimiter)
    next(records, None)
    for i, (line, _end, _fields) in enumerate(records):
        if i == row:
            return line
    return None


def _refuse_unclosed_quote(text: str, name: str, delimiter: str) -> None:
    """An odd number of quotes: either a literal quote inside a field (``5" screen``, fine) or a quoted
    field that never ends (an error; Arrow and a lenient reader would swallow the rest of the file)."""
    reader = _reader(text, delimiter, strict=True)
    end = 0
    try:
        for _fields in reader:
            end = reader.line_num
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise ExtraDataError(name, end + 1, "a quoted field starts in this row and is never closed "
                                                  "(a '\"' is missing)") from None
        # any other strictness complaint (text after a closing quote) is read leniently, as before


def merge_extra_data(customers: pd.DataFrame, extra: pd.DataFrame, *, item_filter: bool,
                     language_map: dict[str, str], warnings: WarningLog) -> pd.DataFrame:
    """Non-empty cells overwrite; typed cells are parsed by the customers.xml rules (an invalid one
    is reported and leaves the customers.xml value in place)."""
    columns: dict[str, str] = {}
    for col in extra.columns:
        target = _ALIASES.get(col.lower())
        if target is None:
            warnings.one(None, cut(col), f"unknown column in {FIELD}; ignored")
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
            warnings.add(codes, bad, target, f"{FIELD} {col}: " + quoted(raw) + f" is not a valid {what}; ignored")
        usable = (raw.notna() & ~bad).to_numpy(bool)
        take = np.zeros(len(out), dtype=bool)
        take[found] = usable[at[found]]
        if take.any():
            picked = values.iloc[at[take]].to_numpy()
            column = out[target].copy()
            column.iloc[np.flatnonzero(take)] = picked
            out[target] = column
    return out
