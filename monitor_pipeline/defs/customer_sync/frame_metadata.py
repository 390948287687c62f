"""What the frame assets show in the UI: previews, tables and check results, bounded in size.

Previews and tables are Dagster tables (``dg.MetadataValue.table``) with a schema whose column types come
from the frame's dtypes (``int``, ``float``, ``bool``, else ``string``), so the UI shows them as tables.
String values are cut to ``VALUE_CHARS`` (200) characters plus "…" with line breaks folded, bytes are
shown as "<N bytes>", a missing value is an empty cell ("" in a string column, null, which the UI
shows as an empty cell, in a typed one). Rows are capped (``PREVIEW_ROWS``, ``TABLE_ROWS``, ``LOG_ROWS``)
and every table fits a byte budget as Dagster serializes it, so one materialization's metadata stays
under 64 KiB whatever customers.xml holds (a 50 MB note included); "<name>_rows" says "N of M" rows shown.
Used by ``customer_frames`` for a fresh parse and by ``frames_reuse`` for reused frames.
"""

import math
import re

import dagster as dg
import pandas as pd

from monitor_pipeline.customers.warnings import VALUE_CHARS, cut

PREVIEW_ROWS = 5          # rows in a frame's "preview"
TABLE_ROWS = 20           # rows in the "rejected" and "warnings_preview" tables and in a failed check's table
LOG_ROWS = 50             # warnings, and rejected customers, written one per line to the run log
PREVIEW_BYTES = 20 * 1024  # a preview's budget as serialized (dg.serialize_value: JSON, non-ASCII escaped)
TABLE_BYTES = 16 * 1024    # the same for the rejected and warnings tables: with the preview, < 64 KiB in all
EXAMPLES = 10             # CustomerCodes listed in a check's "examples"
_BREAKS = re.compile(r"[\r\n]+")


def _missing(value) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def _text(value, limit: int) -> str:
    if _missing(value):
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value):,} bytes>"
    return cut(_BREAKS.sub(" ", str(value)[: limit + 1]), limit)


def _column_type(values: pd.Series) -> str:
    """The schema type of a column, from its dtype; ``string`` for object (mixed) columns and for floats that
    are not all finite (JSON has no Infinity: the UI could not parse the row)."""
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        finite = values.dropna().map(math.isfinite)
        return "float" if finite.all() else "string"
    return "string"


def _value(value, kind: str, limit: int):
    """A cell as TableRecord takes it (str, int, float, bool or None), never numpy's or pandas' scalars."""
    if kind == "string":
        return _text(value, limit)
    if _missing(value):
        return None
    return {"int": int, "float": float, "bool": bool}[kind](value)


def _serialized(value: dg.MetadataValue) -> int:
    return len(dg.serialize_value(value))


def rows_caption(shown: int, total: int) -> str:
    return f"{shown:,} of {total:,}"


def table(frame: pd.DataFrame, rows: int = PREVIEW_ROWS, budget: int = PREVIEW_BYTES,
          descriptions: dict[str, str] | None = None) -> tuple[dg.TableMetadataValue, int]:
    """The first ``rows`` rows as a Dagster table and how many rows it shows: string values cut to
    ``VALUE_CHARS`` characters, line breaks shown as spaces, Dashboard bytes left out; fewer rows, then
    shorter values, until the table as serialized fits ``budget``."""
    shown = frame.head(rows).drop(columns=["Dashboard"], errors="ignore")
    descriptions = descriptions or {}
    kinds = {str(name): _column_type(shown[name]) for name in shown.columns}
    schema = dg.TableSchema(columns=[dg.TableColumn(name, kind, description=descriptions.get(name))
                                     for name, kind in kinds.items()])
    count, limit = len(shown), VALUE_CHARS
    while True:
        records = [dg.TableRecord({name: _value(value, kinds[name], limit) for name, value in zip(kinds, row)})
                   for row in shown.head(count).itertuples(index=False, name=None)]
        value = dg.MetadataValue.table(records=records, schema=schema)
        if count <= 1 and limit <= 16 or _serialized(value) <= budget:
            return value, count
        if count > 1:
            count = max(1, count // 2)
        else:
            limit //= 2


def table_entries(name: str, frame: pd.DataFrame, rows: int = TABLE_ROWS, budget: int = TABLE_BYTES,
                  descriptions: dict[str, str] | None = None) -> dict[str, dg.MetadataValue]:
    """``{name: the table, name + "_rows": "N of M"}``."""
    value, count = table(frame, rows, budget, descriptions)
    return {name: value, f"{name}_rows": dg.MetadataValue.text(rows_caption(count, len(frame)))}


def preview(frame: pd.DataFrame) -> dict[str, dg.MetadataValue]:
    """A frame's "preview" (its first ``PREVIEW_ROWS`` rows within ``PREVIEW_BYTES``) and "preview_rows"."""
    return table_entries("preview", frame, PREVIEW_ROWS, PREVIEW_BYTES)


def _examples(values) -> str:
    return ", ".join(cut(v) for v in list(values[:EXAMPLES]))


def log_rows(context: dg.AssetExecutionContext, warnings: pd.DataFrame, rejected: pd.DataFrame) -> None:
    for row in warnings.head(LOG_ROWS).itertuples(index=False):
        context.log.warning(f"{cut(row.CustomerCode)}: {cut(row.Field)}: {cut(row.Message, 2 * VALUE_CHARS)}")
    if len(warnings) > LOG_ROWS:
        context.log.warning(f"… and {len(warnings) - LOG_ROWS:,} more warnings (see the 'warnings_preview' metadata)")
    for row in rejected.head(LOG_ROWS).itertuples(index=False):
        context.log.warning(f"Rejected customer #{row.Position} ({cut(row.CustomerCode or 'no code')}): {row.Reason}")
    if len(rejected) > LOG_ROWS:
        context.log.warning(f"… and {len(rejected) - LOG_ROWS:,} more rejected customers (see the 'rejected' metadata)")


REJECTED_SHOWN = ["Position", "Line", "CustomerCode", "Reason"]
ADDRESS_SHOWN = ["CustomerCode", "AddressType", "AddressLine1", "PostCode", "City"]


def _offending(name: str, rows: pd.DataFrame, descriptions: dict[str, str] | None = None) -> dict:
    """A failed check's table of its offending rows (at most ``TABLE_ROWS``, within ``TABLE_BYTES``); nothing
    when there are none."""
    return table_entries(name, rows, TABLE_ROWS, TABLE_BYTES, descriptions) if len(rows) else {}


def frame_checks(customers: pd.DataFrame, addresses: pd.DataFrame, contacts: pd.DataFrame,
                 rejected: pd.DataFrame | int):
    """The four checks of the frames. ``rejected`` is the frame of rejected customers, or only their count
    when the frame is not at hand (the check then says its rows are not available)."""
    codes = customers["CustomerCode"]
    duplicated = codes.value_counts(dropna=False)[codes[codes.duplicated()].unique()]  # in the file's order
    yield dg.AssetCheckResult(
        check_name="no_duplicate_customer_code", asset_key="customers", passed=duplicated.empty,
        metadata={"duplicates": len(duplicated), "examples": _examples(duplicated.index.tolist()),
                  **_offending("duplicated_codes",
                               pd.DataFrame({"CustomerCode": duplicated.index.astype(object),
                                             "Occurrences": duplicated.to_numpy()}),
                               {"Occurrences": "times the CustomerCode occurs in customers"})})

    if isinstance(rejected, pd.DataFrame):
        count = len(rejected)
        shown = _offending("rejected_customers", rejected[[c for c in REJECTED_SHOWN if c in rejected.columns]],
                           {"Position": "the customer's position in customers.xml (1 = first)",
                            "Line": "its line in customers.xml"})
    else:
        count = rejected
        shown = {"rejected_customers_rows": f"0 of {count:,}: the rejected customers' rows are not at hand"} \
            if count else {}
    yield dg.AssetCheckResult(check_name="no_rejected_customers", asset_key="customers",
                              passed=count == 0, severity=dg.AssetCheckSeverity.WARN,
                              metadata={"rejected": count, **shown})

    mains = contacts["IsMainContactPerson"].fillna(False).astype(int).groupby(contacts["CustomerCode"]).sum()
    wrong = mains[mains != 1]
    yield dg.AssetCheckResult(
        check_name="one_main_contact", asset_key="customer_contacts", passed=wrong.empty,
        metadata={"customers_with_contacts": len(mains), "violations": len(wrong), "examples": _examples(wrong.index),
                  **_offending("violating_customers",
                               pd.DataFrame({"CustomerCode": wrong.index.astype(object),
                                             "MainContacts": wrong.to_numpy()}),
                               {"MainContacts": "contacts of the customer marked as main contact (should be 1)"})})

    missing = addresses[addresses["Country"].isna()]
    yield dg.AssetCheckResult(
        check_name="every_address_has_country", asset_key="customer_addresses",
        passed=missing.empty, severity=dg.AssetCheckSeverity.WARN,
        metadata={"addresses": len(addresses), "without_country": len(missing),
                  "examples": _examples(missing["CustomerCode"].unique()),
                  **_offending("addresses_without_country",
                               missing[[c for c in ADDRESS_SHOWN if c in missing.columns]])})
