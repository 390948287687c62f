"""Check ``exported_customers_arrived`` across real runs: ``export_new_customer_job`` delivers a new App4Sales
customer to the Monitor folder, later ``customer_sync_job`` runs read customers.xml from it (the sandbox over
HTTP, the definitions as deployed: ``defs/customer_sync/export_acknowledgment.py``)."""

import sqlite3
import time

import dagster as dg

from monitor_pipeline.app4sales.client import parse_base_url
from monitor_pipeline.app4sales.state import SyncState, state_file_name
from monitor_pipeline.definitions import build_defs
from monitor_pipeline.defs.customer_export.job import EXPORT_JOB_NAME, run_config_for
from monitor_pipeline_tests.defs.customer_sync.harness import customer_xml, sync, write_customers  # noqa: F401 (fixture)

CHECK = dg.AssetCheckKey(dg.AssetKey("customers"), "exported_customers_arrived")


def _new_customer(sync, name: str) -> tuple[dict, dict]:
    """A customer created in App4Sales: what the sandbox answered, and its item of the new-customer feed."""
    created = sync.sandbox.admin_api().create_new_customer(name)
    with sync.sandbox.client() as client:
        item = next(i for i in client.new_customers(after=0, take=1000) if i["CustomerGuid"] == created["CustomerGuid"])
    return created, item


def _run_export(sync, item: dict) -> dg.ExecuteInProcessResult:
    return build_defs().resolve_job_def(EXPORT_JOB_NAME).execute_in_process(
        run_config=run_config_for(item), instance=sync.instance, raise_on_error=False)


def _export(sync) -> str:
    """Create a customer in App4Sales and run the export job on it; its CustomerCode."""
    created, item = _new_customer(sync, "Nya Kaffet AB")
    result = _run_export(sync, item)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return created["CustomerCode"]


def _evaluation(run) -> dg.AssetCheckEvaluation:
    evaluations = [e for e in run.result.get_asset_check_evaluations() if e.asset_check_key == CHECK]
    assert len(evaluations) == 1, evaluations
    return evaluations[0]


def _meta(evaluation) -> dict:
    return {k: v.value for k, v in evaluation.metadata.items()}


def test_the_check_warns_for_an_exported_customer_missing_from_customers_xml_until_it_arrives(sync):
    write_customers(sync.customers_xml, [customer_xml("K1", "Kund 1")])
    before = sync.run()
    assert before.success and _evaluation(before).passed
    assert _meta(_evaluation(before))["exports"] == 0

    code = _export(sync)
    exported = sync.folder / "customers" / f"{code}.xml"
    assert exported.is_file()

    pending = sync.run()  # within MONITOR_EXPORT_ACK_HOURS (24 h): pending, not a failure
    assert pending.success, pending.failure_message()
    evaluation = _evaluation(pending)
    assert evaluation.passed and _meta(evaluation)["pending"] == 1 and _meta(evaluation)["overdue"] == 0

    sync.setenv(MONITOR_EXPORT_ACK_HOURS="0.0001")  # 0.36 s
    time.sleep(0.5)
    overdue = sync.run()
    assert overdue.success, overdue.failure_message()  # a warning, the sync itself went through
    evaluation = _evaluation(overdue)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert code in evaluation.description and "still in customers/" in evaluation.description
    meta = _meta(evaluation)
    assert (meta["exports"], meta["overdue"], meta["pending"], meta["arrived"], meta["taken_by_monitor"]) == \
        (1, 1, 0, 0, 0)
    assert [(r.data["CustomerCode"], r.data["file"], r.data["file_taken"]) for r in meta["overdue_customers"].records] \
        == [(code, f"customers/{code}.xml", "no")]

    exported.unlink()  # Monitor imports the file and creates the customer: it is in the next customers.xml
    write_customers(sync.customers_xml, [customer_xml("K1", "Kund 1"), customer_xml(code, "Nya Kaffet AB")])
    arrived = sync.run()
    assert arrived.success, arrived.failure_message()
    evaluation = _evaluation(arrived)
    assert evaluation.passed, evaluation.description
    meta = _meta(evaluation)
    assert (meta["arrived"], meta["arrived_this_sync"], meta["taken_by_monitor"], meta["overdue"]) == (1, 1, 1, 0)
    assert any(f"Exported customer {code} arrived in customers.xml" in e.user_message
               for e in sync.instance.all_logs(arrived.result.run_id))

    write_customers(sync.customers_xml, [customer_xml("K1", "Kund 1")])  # Monitor deletes it again later:
    later = sync.run()                                                     # it did arrive, nothing is overdue
    assert _evaluation(later).passed and _meta(_evaluation(later))["arrived_this_sync"] == 0


def test_an_export_that_cannot_be_recorded_fails_its_run_after_the_delivery(sync, tmp_path):
    administration = parse_base_url(sync.sandbox.base_url())[1]
    path = tmp_path / "state" / state_file_name(administration)
    SyncState(path).close()
    with sqlite3.connect(path) as conn:  # a state that reads but refuses the export's write
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON exports BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    created, item = _new_customer(sync, "Ingen Plats AB")
    result = _run_export(sync, item)
    assert not result.success
    failures = result.get_step_failure_events()
    assert len(failures) == 1  # not retried: a retry could upload it again once Monitor has taken it
    message = failures[0].step_failure_data.error.message
    assert "could not be recorded for check exported_customers_arrived" in message and "Do not re-execute" in message
    assert (sync.folder / "customers" / f"{created['CustomerCode']}.xml").is_file()  # delivered
    posted = sync.sandbox.admin_api().get_result(created["CustomerGuid"])
    assert posted["Result"] == f"SUCCESS_CUSTOMER:{created['CustomerCode']}"  # and App4Sales was told so


def test_a_state_that_cannot_be_read_uploads_nothing(sync, tmp_path):
    """Without the record of earlier deliveries a file gone from customers/ could be one Monitor took: nothing is
    uploaded, the error is posted."""
    administration = parse_base_url(sync.sandbox.base_url())[1]
    (tmp_path / "state" / state_file_name(administration)).mkdir(parents=True)  # a folder where the file goes
    created, item = _new_customer(sync, "Oläslig AB")
    result = _run_export(sync, item)
    assert not result.success
    assert not (sync.folder / "customers").exists()
    error = sync.sandbox.admin_api().get_result(created["CustomerGuid"])["Error"]
    assert "could not be read to tell whether this customer was delivered before, nothing uploaded" in error


def test_a_retry_after_monitor_took_the_file_does_not_deliver_it_twice(sync):
    """The record of the delivery is written before SUCCESS is posted: a try whose post failed, run again after
    Monitor imported the file, finds the record and uploads nothing."""
    created, item = _new_customer(sync, "Två Gånger AB")
    first = _run_export(sync, item)
    assert first.success
    exported = sync.folder / "customers" / f"{created['CustomerCode']}.xml"
    exported.unlink()  # Monitor took it
    again = _run_export(sync, item)
    assert again.success
    assert not exported.exists() and list((sync.folder / "customers").iterdir()) == []  # not uploaded again
    assert any("delivered before" in e.user_message for e in sync.instance.all_logs(again.run_id))
    assert sync.sandbox.admin_api().get_result(created["CustomerGuid"])["Posts"] == 2  # SUCCESS both times


def test_the_export_records_code_guid_file_and_time_in_the_state_of_its_administration(sync, tmp_path):
    code = _export(sync)
    state = tmp_path / "state" / state_file_name(parse_base_url(sync.sandbox.base_url())[1])
    with sqlite3.connect(state) as conn:
        rows = conn.execute("SELECT code, guid, file, exported_at, arrived_at FROM exports").fetchall()
    assert [(r[0], r[2], r[4]) for r in rows] == [(code, f"customers/{code}.xml", None)]
    assert rows[0][1] and rows[0][3].endswith("+00:00")


def test_on_a_postgresql_state_the_export_and_the_check_meet_in_its_rows(sync, postgres_db_url):
    import sqlalchemy as sa

    from monitor_pipeline.app4sales.state_postgres import dispose_engines

    sync.setenv(MONITOR_STATE_URL=postgres_db_url)
    try:
        code = _export(sync)
        write_customers(sync.customers_xml, [customer_xml(code, "Nya Kaffet AB")])
        run = sync.run()
        assert run.success, run.failure_message()
        evaluation = _evaluation(run)
        assert evaluation.passed and (_meta(evaluation)["arrived"], _meta(evaluation)["exports"]) == (1, 1)
        engine = sa.create_engine(postgres_db_url)
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT code, file, arrived_at IS NOT NULL, taken_at IS NOT NULL "
                                        "FROM monitor_exports")).all()
        engine.dispose()
        assert rows == [(code, f"customers/{code}.xml", True, False)]  # the file is still in customers/
        administration = parse_base_url(sync.sandbox.base_url())[1]
        assert not (sync.folder.parent / "state" / state_file_name(administration)).exists()  # no SQLite state
    finally:
        dispose_engines()
