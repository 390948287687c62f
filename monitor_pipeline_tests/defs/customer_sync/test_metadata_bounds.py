"""Run metadata stays small whatever customers.xml holds: previews, the rejected / warnings tables, check
tables and examples, and log lines cut long values to 200 characters plus "…" and show a bounded number of
rows, so one event of the run (a materialization, a check result, a log line) stays below 64 KiB."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from monitor_pipeline.defs.customer_sync.frame_metadata import PREVIEW_BYTES, TABLE_ROWS, table
from monitor_pipeline.defs.customer_sync.frames_reuse import _outputs
from monitor_pipeline.customers import CUSTOMER_COLUMNS
from monitor_pipeline_tests.defs.customer_sync.frames_harness import run_frames
from monitor_pipeline_tests.defs.customer_sync.harness import SyncRun, customer_xml, sync, write_customers  # noqa: F401

EVENT_BOUND = 64 * 1024
NOTE = 9_990_000  # just below the parsers' 10,000,000-byte text node limit (lib.xml.TEXT_NODE_LIMIT)
BIG = [f"BIG{i}" for i in range(5)]  # five such notes: a 50 MB file


def _sizes(sync, run: SyncRun) -> dict[str, int]:
    """Serialized size of every event of the run, as stored in the run database, by a readable name."""
    sizes = {}
    for i, entry in enumerate(sync.instance.all_logs(run.result.run_id)):
        event = entry.dagster_event
        name = f"{i}:{event.event_type_value}:{event.asset_key.to_user_string() if event.asset_key else ''}" \
            if event else f"{i}:log"
        sizes[name] = len(dg.serialize_value(entry))
    return sizes


def _metadata_sizes(run: SyncRun) -> dict[str, int]:
    """Serialized metadata of every materialization and asset check result of the run."""
    sizes = {}
    for event in run.result.all_events:
        if event.is_step_materialization:
            materialization = event.step_materialization_data.materialization
            sizes[materialization.asset_key.to_user_string()] = len(dg.serialize_value(materialization.metadata))
        elif event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            sizes[evaluation.check_name] = len(dg.serialize_value(evaluation.metadata))
    return sizes


def test_50_mb_of_notes_are_stored_whole_but_shown_cut(sync):
    note = "N" * NOTE
    others = [customer_xml(f"C{i}", f"Kund {i}") for i in range(3)]
    big = [customer_xml(code, "Big AB").replace("</customer>", f"<customernote>{note}</customernote></customer>")
           for code in BIG]
    write_customers(sync.customers_xml, [others[0], *big, *others[1:]])
    del note, big
    run = run_frames(sync)
    assert run.success, run.failure_message()

    customers = run.metadata("customers")
    stored = pd.read_parquet(Path(customers["path"]), columns=["CustomerCode", "CustomerNote"])
    lengths = {code: len(text) if isinstance(text, str) else 0
               for code, text in zip(stored["CustomerCode"], stored["CustomerNote"])}
    assert lengths == {"C0": 0, **{code: NOTE for code in BIG}, "C1": 0, "C2": 0}
    preview = customers["preview"]
    assert isinstance(preview, dg.TableMetadataValue) and customers["preview_rows"] == "5 of 8"
    notes = [record.data["CustomerNote"] for record in preview.records]
    assert notes == ["", *["N" * 200 + "…"] * 4]
    assert len(dg.serialize_value(preview)) <= PREVIEW_BYTES
    sizes = _metadata_sizes(run)
    assert set(sizes) == {"customers_xml", "customers", "customer_addresses", "customer_contacts",
                          "customer_dashboards", "customer_rejections", "no_duplicate_customer_code",
                          "no_rejected_customers", "one_main_contact", "every_address_has_country",
                          "exported_customers_arrived"}
    assert max(sizes.values()) < EVENT_BOUND, sizes
    events = _sizes(sync, run)
    assert max(events.values()) < EVENT_BOUND, sorted(events.items(), key=lambda kv: -kv[1])[:3]

    again = run_frames(sync)  # unchanged: the frames are reused, and so is the bound
    assert again.success, again.failure_message()
    assert again.metadata("customers")["reparsed"] is False
    assert again.metadata("customers")["preview"] == preview
    assert again.metadata("customers")["preview_rows"] == "5 of 8"
    assert max(_metadata_sizes(again).values()) < EVENT_BOUND
    assert max(_sizes(sync, again).values()) < EVENT_BOUND


def test_100k_warnings_are_counted_in_full_but_shown_in_bounded_tables_and_logs(sync):
    long_value = "ja" * 400 + "x"   # an 801-character invalid boolean
    customers = [f"<customer><customercode>W{i:06d}</customercode><customername>Kund {i}</customername>"
                 f"<isvatliable>{long_value if i == 0 else 'perhaps'}</isvatliable></customer>"
                 for i in range(100_000)]
    customers += [f"<customer><customername>Utan kod {i}</customername></customer>" for i in range(60)]
    write_customers(sync.customers_xml, customers)
    del customers
    run = run_frames(sync)
    assert run.success, run.failure_message()

    meta = run.metadata("customers")
    assert (meta["row_count"], meta["warnings"], meta["rejected_customers"]) == (100_000, 100_000, 60)
    warnings = [record.data for record in meta["warnings_preview"].records]
    assert [w["Field"] for w in warnings] == ["VatLiable"] * 20 and meta["warnings_preview_rows"] == "20 of 100,000"
    assert warnings[0]["Message"] == "<isvatliable> '" + "ja" * 50 + "…' is not a valid boolean; set to null"
    assert len(meta["rejected"].records) == 20 and meta["rejected_rows"] == "20 of 60"
    [check] = [e for e in run.result.get_asset_check_evaluations() if e.check_name == "no_rejected_customers"]
    rejected = check.metadata["rejected_customers"].value.records
    assert check.metadata["rejected"].value == 60 and len(rejected) == TABLE_ROWS
    assert check.metadata["rejected_customers_rows"].value == "20 of 60"
    assert rejected[0].data == {"Position": 100_001, "Line": rejected[0].data["Line"], "CustomerCode": "",
                                "Reason": "missing CustomerCode"}

    logs = [entry.user_message for entry in sync.instance.all_logs(run.result.run_id)
            if entry.dagster_event is None and entry.step_key == "customer_frames"]
    warning_lines = [m for m in logs if m.startswith("W0")]
    rejected_lines = [m for m in logs if m.startswith("Rejected customer #")]
    assert (len(warning_lines), len(rejected_lines)) == (50, 50)
    assert "… and 99,950 more warnings (see the 'warnings_preview' metadata)" in logs
    assert "… and 10 more rejected customers (see the 'rejected' metadata)" in logs

    assert max(_metadata_sizes(run).values()) < EVENT_BOUND
    events = _sizes(sync, run)
    assert max(events.values()) < EVENT_BOUND
    assert sum(events.values()) < 1024 * 1024, f"{sum(events.values()):,} bytes in {len(events)} events"


def test_a_preview_of_long_non_ascii_values_in_every_column_fits_its_budget():
    frame = pd.DataFrame({col: ["å|\n" * 5_000] * 100 for col in CUSTOMER_COLUMNS})
    preview, shown = table(frame)
    assert [column.name for column in preview.schema.columns] == CUSTOMER_COLUMNS
    assert len(dg.serialize_value(preview)) <= PREVIEW_BYTES
    assert len(dg.serialize_value({"preview": preview})) < 21 * 1024   # as a materialization stores it
    assert 1 <= shown < 100 and len(preview.records) == shown
    cells = [value for record in preview.records for value in record.data.values()]
    assert all(value.startswith("å| å| ") and value.endswith("…") and "\n" not in value for value in cells)
    small, _ = table(frame.head(3), 5, 16 * 1024)
    assert len(dg.serialize_value(small)) <= 16 * 1024


def test_reused_frames_do_not_carry_oversized_metadata_of_an_older_version():
    frames = {name: pd.DataFrame({"CustomerCode": ["A1"], "Country": ["SE"], "IsMainContactPerson": [True]})
              for name in ("customers", "customer_addresses", "customer_contacts", "customer_dashboards")}
    head = dg.AssetMaterialization("customers", metadata={
        "input_key": "k", "warnings": 3, "rejected_customers": 0,
        "warnings_preview": dg.MetadataValue.md("| x |\n|---|\n| ok |"),
        "rejected": dg.MetadataValue.md("| " + "N" * 50_000_000 + " |")})
    customers = next(out for out in _outputs(frames, head) if getattr(out, "output_name", None) == "customers")
    assert sorted(customers.metadata) == ["input_key", "preview", "preview_rows", "rejected_customers", "reparsed",
                                          "row_count", "warnings", "warnings_preview"]


def test_reused_frames_show_the_rejected_customers_of_the_stored_frame():
    frames = {name: pd.DataFrame({"CustomerCode": ["A1"], "Country": ["SE"], "IsMainContactPerson": [True]})
              for name in ("customers", "customer_addresses", "customer_contacts", "customer_dashboards")}
    frames["customer_rejections"] = pd.DataFrame({"CustomerCode": [None, "B2"], "Position": [2, 3],
                                                  "Line": pd.array([7, None], dtype="Int64"),
                                                  "Reason": ["missing CustomerCode", "missing CustomerName"]})
    head = dg.AssetMaterialization("customers", metadata={   # an older version's: counted 5, a markdown table
        "input_key": "k", "warnings": 0, "rejected_customers": 5, "rejected": dg.MetadataValue.md("| old |")})
    results = list(_outputs(frames, head))
    customers = next(out for out in results if getattr(out, "output_name", None) == "customers")
    assert customers.metadata["rejected_customers"].value == 2 and customers.metadata["rejected_rows"].value == "2 of 2"
    assert isinstance(customers.metadata["rejected"], dg.TableMetadataValue)
    [check] = [r for r in results if getattr(r, "check_name", None) == "no_rejected_customers"]
    assert check.passed is False and check.metadata["rejected"].value == 2
    assert [r.data for r in check.metadata["rejected_customers"].records] == [
        {"Position": 2, "Line": 7, "CustomerCode": "", "Reason": "missing CustomerCode"},
        {"Position": 3, "Line": None, "CustomerCode": "B2", "Reason": "missing CustomerName"}]
