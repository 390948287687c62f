"""The change log (asset ``customer_changes``) and the mass-change guard, through customer_sync_job against
the sandbox (``app4sales/changes.py``, ``defs/customer_sync/change_log.py``)."""

import re

import dagster as dg
import pandas as pd

from monitor_pipeline_tests.defs.customer_sync.harness import customer_xml, sync, write_customers  # noqa: F401 (fixture)

APPROVE = {"ops": {"customer_upsert_batches": {"config": {"approve_mass_change": True}}}}
DRY = {"ops": {"customer_upsert_batches": {"config": {"dry_run": True}}}}


def _changes(run) -> pd.DataFrame:
    return run.result.output_for_node("customer_upsert_batches", "customer_changes")


def _rows(frame: pd.DataFrame) -> list[tuple]:
    return [tuple(None if pd.isna(v) else v for v in row) for row in frame.itertuples(index=False, name=None)]


def _without_contact(xml: str) -> str:
    return re.sub(r"<contact\w+>[^<]*</contact\w+>", "", xml)


def _stored_changes(sync) -> pd.DataFrame:
    stored = list((sync.folder.parent / "storage").rglob("customer_changes*"))
    assert len(stored) == 1, stored
    return pd.read_parquet(stored[0])


def test_the_change_log_lists_a_rename_a_new_delivery_city_and_a_removed_contact(sync):
    customers = [customer_xml(f"L{i}", f"Kund {i}", contact="Jan Berg") for i in range(6)]
    write_customers(sync.customers_xml, customers)
    first = sync.run()
    assert first.success, first.failure_message()
    assert _rows(_changes(first)) == [(f"L{i}", "new", None, None, f"Kund {i}") for i in range(6)]
    assert first.metadata("customer_changes")["customers_new"] == 6

    changed = list(customers)
    changed[1] = customer_xml("L1", "Kund 1 Sverige AB", contact="Jan Berg")
    changed[2] = customer_xml("L2", "Kund 2", contact="Jan Berg", city="Luleå")
    changed[3] = _without_contact(customer_xml("L3", "Kund 3"))
    changed.append(customer_xml("L9", "Kund 9"))
    write_customers(sync.customers_xml, changed)
    run = sync.run()
    assert run.success, run.failure_message()
    rows = _rows(_changes(run))
    assert ("L1", "changed", "CustomerName", "Kund 1", "Kund 1 Sverige AB") in rows
    assert ("L2", "changed", "Addresses[del].City", "Uppsala", "Luleå") in rows
    removed = [r for r in rows if r[0] == "L3" and r[2].startswith("Contacts")]  # (its e-mail left the addresses too)
    assert [(r[2], r[4]) for r in removed] == [("Contacts[Jan Berg]", None)] and '"Jan Berg"' in removed[0][3]
    assert ("L9", "new", None, None, "Kund 9") in rows
    assert {r[0] for r in rows} == {"L1", "L2", "L3", "L9"}  # the unchanged ones are not in it
    assert _rows(_stored_changes(sync)) == rows  # the Parquet file of the asset
    meta = run.metadata("customer_changes")
    assert (meta["customers_changed"], meta["customers_new"], meta["dry_run"]) == (3, 1, False)
    fields = {r.data["Field"]: r.data["Customers"] for r in meta["fields"].records}
    assert (fields["CustomerName"], fields["Addresses[*].City"], fields["Contacts[*]"]) == (1, 1, 1)

    again = sync.run()  # nothing changed: an empty change log
    assert again.success and _rows(_changes(again)) == []


def test_a_dry_run_writes_the_changes_it_would_send(sync):
    write_customers(sync.customers_xml, [customer_xml("P1", "Ett AB"), customer_xml("P2", "Två AB")])
    assert sync.run().success
    write_customers(sync.customers_xml, [customer_xml("P1", "Ett Sverige AB"), customer_xml("P2", "Två AB")])
    dry = sync.run(DRY)
    assert dry.success, dry.failure_message()
    assert _rows(_changes(dry)) == [("P1", "changed", "CustomerName", "Ett AB", "Ett Sverige AB")]
    assert dry.metadata("customer_changes")["dry_run"] is True
    assert sync.sandbox.admin_api().get_customer("P1")["CustomerName"] == "Ett AB"


def test_the_mass_change_guard_refuses_a_file_renaming_most_customers_until_approved(sync):
    customers = [customer_xml(f"G{i:02d}", f"Kund {i}") for i in range(10)]
    write_customers(sync.customers_xml, customers)
    assert sync.run().success
    api = sync.sandbox.admin_api()
    shifted = [customer_xml(f"G{i:02d}", f"Shifted {i}") if i < 6 else customers[i] for i in range(10)]
    shifted.append(customer_xml("G99", "Ny AB"))  # a new customer does not count
    write_customers(sync.customers_xml, shifted)
    events = api.events()

    refused = sync.run()
    assert not refused.success
    message = refused.failure_message()
    assert "refusing to update 6 of 10 customers already in App4Sales (60.0%)" in message
    assert "MONITOR_MAX_CHANGE_FRACTION=0.5" in message and "CustomerName (6)" in message
    assert "G00 CustomerName: 'Kund 0' → 'Shifted 0'" in message and "approve_mass_change: true" in message
    assert api.events() == events  # nothing was sent: no script, no batch
    assert api.get_customer("G99") is None

    dry = sync.run(DRY)  # a dry run says the same, and succeeds
    assert dry.success and "refusing to update 6 of 10" in [
        e.asset_observation_data.asset_observation.metadata["refused"].value
        for e in dry.result.get_asset_observation_events()][0]

    approved = sync.run(APPROVE)
    assert approved.success, approved.failure_message()
    done = approved.metadata()
    assert (done["updated"], done["created"]) == (6, 1)
    assert api.get_customer("G03")["CustomerName"] == "Shifted 3"


def test_the_guard_follows_the_setting_and_never_counts_a_first_sync(sync):
    sync.setenv(MONITOR_MAX_CHANGE_FRACTION="0.7")
    customers = [customer_xml(f"H{i:02d}", f"Kund {i}") for i in range(10)]
    write_customers(sync.customers_xml, customers)
    assert sync.run().success  # 10 new: not updates
    write_customers(sync.customers_xml, [customer_xml(f"H{i:02d}", f"Other {i}") if i < 7 else customers[i]
                                         for i in range(10)])
    run = sync.run()  # exactly 70%: allowed
    assert run.success, run.failure_message()
    assert run.metadata()["updated"] == 7
    assert dg.AssetKey("customer_changes") in {e.asset_key for e in run.result.get_asset_materialization_events()}


def test_materializing_the_change_log_alone_is_a_dry_run(sync):
    from monitor_pipeline.definitions import build_defs

    write_customers(sync.customers_xml, [customer_xml("S1", "Ett AB"), customer_xml("S2", "Två AB")])
    assert sync.run().success
    write_customers(sync.customers_xml, [customer_xml("S1", "Ett AB"), customer_xml("S2", "Två Sverige AB")])
    assert sync.run(  # the frames of the new file, nothing sent
        {"ops": {"customer_upsert_batches": {"config": {"dry_run": True}}}}).success
    events = sync.sandbox.admin_api().events()
    job = build_defs().resolve_job_def("customer_sync_job")
    result = job.execute_in_process(instance=sync.instance, asset_selection=[dg.AssetKey("customer_changes")],
                                    raise_on_error=False)
    assert result.success
    assert _rows(result.output_for_node("customer_upsert_batches", "customer_changes")) == [
        ("S2", "changed", "CustomerName", "Två AB", "Två Sverige AB")]
    assert sync.sandbox.admin_api().events() == events
    keys = {e.asset_key for e in result.get_asset_materialization_events()}
    assert keys == {dg.AssetKey("customer_changes")}  # customer_upsert_batches is not materialized


def test_a_run_that_stops_midway_logs_what_was_confirmed_before_it_fails(sync):
    """What App4Sales confirmed before the stop is recorded, so the next run does not send it: the failing run
    writes those customers' rows (``partial``), the next one the rest."""
    write_customers(sync.customers_xml, [customer_xml(f"S{i:03d}", f"Kund {i}") for i in range(250)])
    sync.sandbox.admin_api().add_fault("customers/batch", "POST", skip=1, times=50, status=503)
    stopped = sync.run()
    assert not stopped.success
    stored = {c["CustomerCode"] for c in sync.sandbox.client().list_customers()}
    partial = _rows(_changes(stopped))
    assert len(stored) == 100 and {row[0] for row in partial} == stored and {row[1] for row in partial} == {"new"}
    assert stopped.metadata("customer_changes")["partial"] is True
    sync.sandbox.admin_api().clear_faults()
    rest = sync.run()
    assert rest.success, rest.failure_message()
    assert {row[0] for row in _rows(_changes(rest))} == {f"S{i:03d}" for i in range(250)} - stored
    assert rest.metadata("customer_changes")["partial"] is False
