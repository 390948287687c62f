"""Asset ``customer_changes``: what the upsert sent, field by field (:mod:`monitor_pipeline.app4sales.changes`).

Materialized by the upsert's step (``customer_upsert_batches``) as a Parquet frame, one per tenant partition,
with columns ``CustomerCode``, ``Reason`` (new / changed / reactivated / full refresh / deactivated, or
deactivation unconfirmed when App4Sales' count does not match),
``Field``, ``OldValue``, ``NewValue``: only what App4Sales confirmed in a real run, everything that would be
sent in a dry run (``dry_run: true`` in its metadata). A run that stops midway (App4Sales away) still writes
what was confirmed until then (``partial: true``) before it fails: the next run does not send those again. Metadata: the rows and customers per reason (numbers,
so the UI plots them), the customers per changed field (``fields``) and the first rows (``changes``).
"""

from __future__ import annotations

import dagster as dg
import pandas as pd

from monitor_pipeline.app4sales.changes import changes_frame, field_counts
from monitor_pipeline.defs.customer_sync.frame_metadata import table_entries

ASSET = "customer_changes"
KEY = dg.AssetKey(ASSET)
DESCRIPTION = ("What the last sync sent, one row per changed field (CustomerCode, Reason, Field, OldValue, NewValue); "
               "a new or deactivated customer is one row. A dry run writes what it would send.")
FIELD_ROWS = 30


def changes_output(rows: list[tuple], *, dry_run: bool, partial: bool = False) -> dg.Output:
    """``partial``: the run stopped before its end; the rows are what App4Sales confirmed until then."""
    frame = changes_frame(rows)
    per_customer = frame.drop_duplicates("CustomerCode")["Reason"].value_counts()
    fields = field_counts(frame)
    field_table = pd.DataFrame({"Field": list(fields)[:FIELD_ROWS], "Customers": list(fields.values())[:FIELD_ROWS]})
    metadata = {
        "dry_run": dry_run,
        "partial": partial,
        "row_count": dg.MetadataValue.int(len(frame)),
        "customers": dg.MetadataValue.int(int(frame["CustomerCode"].nunique())),
        **{f"customers_{reason.replace(' ', '_')}": dg.MetadataValue.int(int(per_customer.get(reason, 0)))
           for reason in ("new", "changed", "reactivated", "full refresh", "deactivated")},
        "fields_changed": dg.MetadataValue.int(len(fields)),
        **table_entries("fields", field_table.astype({"Field": "string"}),
                        descriptions={"Customers": "customers with this field changed; an address or contact "
                                                   "counts under Addresses[*] / Contacts[*]"}),
        **table_entries("changes", frame),
    }
    return dg.Output(frame, output_name=ASSET, metadata=metadata)
