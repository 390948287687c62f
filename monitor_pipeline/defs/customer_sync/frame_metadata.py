"""What the frame assets show in the UI: previews, tables and check results, bounded in size.

Values are cut to ``VALUE_CHARS`` (200) characters plus "…" with line breaks folded, rows are capped
(``PREVIEW_ROWS``, ``TABLE_ROWS``, ``LOG_ROWS``) and every table fits a byte budget, so one
materialization's metadata stays under 64 KiB whatever customers.xml holds (a 50 MB note included).
Used by ``customer_frames`` for a fresh parse and by ``frames_reuse`` for reused frames.
"""

import json
import re

import dagster as dg
import pandas as pd

from monitor_pipeline.customers.warnings import VALUE_CHARS, cut

PREVIEW_ROWS = 5          # rows in a frame's "preview"
TABLE_ROWS = 20           # rows in the "rejected" and "warnings_preview" tables
LOG_ROWS = 50             # warnings, and rejected customers, written one per line to the run log
PREVIEW_BYTES = 20 * 1024  # a preview's budget as serialized (JSON, non-ASCII escaped)
TABLE_BYTES = 16 * 1024    # the same for the rejected and warnings tables: with the preview, < 64 KiB in all
EXAMPLES = 10             # CustomerCodes listed in a check's "examples"
_BREAKS = re.compile(r"[\r\n]+")


def _cell(value, limit: int) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value):,} bytes>"
    return cut(_BREAKS.sub(" ", str(value)[: limit + 1]), limit).replace("|", "\\|")


def _markdown(cells: pd.DataFrame) -> str:
    """A GitHub-style table of already cut and escaped cells, without alignment padding (which would
    spend the budget on spaces)."""
    lines = ["| " + " | ".join(_cell(c, VALUE_CHARS) for c in cells.columns) + " |",
             "|" + "|".join("---" for _ in cells.columns) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False, name=None)]
    return "\n".join(lines)


def _serialized(text: str) -> int:
    return len(json.dumps(text))


def preview(frame: pd.DataFrame, rows: int = PREVIEW_ROWS, budget: int = PREVIEW_BYTES) -> dg.MetadataValue:
    """The first ``rows`` rows as a markdown table: values cut to ``VALUE_CHARS`` characters, line
    breaks shown as spaces, Dashboard bytes left out; fewer rows, then shorter values, until the table
    fits ``budget``. A caption says how many rows of how many are shown."""
    total = len(frame)
    shown = frame.head(rows).drop(columns=["Dashboard"], errors="ignore")
    if not len(shown):
        return dg.MetadataValue.md("_empty_")
    count, limit = len(shown), VALUE_CHARS
    while True:
        cells = shown.head(count).map(lambda v: _cell(v, limit))
        text = _markdown(cells)
        if count < total:
            text += f"\n\n_{count:,} of {total:,} rows_"
        if _serialized(text) <= budget or (count == 1 and limit <= 16):
            return dg.MetadataValue.md(text)
        if count > 1:
            count = max(1, count // 2)
        else:
            limit //= 2


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


def frame_checks(customers: pd.DataFrame, addresses: pd.DataFrame, contacts: pd.DataFrame, rejected: int):
    duplicated = customers["CustomerCode"][customers["CustomerCode"].duplicated()].unique().tolist()
    yield dg.AssetCheckResult(check_name="no_duplicate_customer_code", asset_key="customers",
                              passed=not duplicated, metadata={"duplicates": len(duplicated),
                                                               "examples": _examples(duplicated)})
    yield dg.AssetCheckResult(check_name="no_rejected_customers", asset_key="customers",
                              passed=rejected == 0, severity=dg.AssetCheckSeverity.WARN,
                              metadata={"rejected": rejected})
    mains = contacts["IsMainContactPerson"].fillna(False).astype(int).groupby(contacts["CustomerCode"]).sum()
    wrong = mains[mains != 1]
    yield dg.AssetCheckResult(check_name="one_main_contact", asset_key="customer_contacts", passed=wrong.empty,
                              metadata={"customers_with_contacts": len(mains), "violations": len(wrong),
                                        "examples": _examples(wrong.index)})
    missing = addresses[addresses["Country"].isna()]
    yield dg.AssetCheckResult(check_name="every_address_has_country", asset_key="customer_addresses",
                              passed=missing.empty, severity=dg.AssetCheckSeverity.WARN,
                              metadata={"addresses": len(addresses), "without_country": len(missing),
                                        "examples": _examples(missing["CustomerCode"].unique())})
