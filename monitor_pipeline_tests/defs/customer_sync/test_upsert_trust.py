"""customer_sync_job against an App4Sales that lies, stalls or races (SPEC §5): nothing is recorded that
App4Sales did not confirm, every wait is bounded, and two runs never write one administration at once.
The sandbox plays each counterpart over real HTTP (``monitor_pipeline/sandbox/faults.py``)."""

import threading
import time

import dagster as dg
import pytest

from monitor_pipeline.app4sales.state import SyncState
from monitor_pipeline.definitions import build_defs
from monitor_pipeline.lib.host_slots import host_slots, sqlite_url
from monitor_pipeline.resources.app4sales import App4SalesApi
from monitor_pipeline_tests.defs.customer_sync.harness import SyncRun, customer_xml, sync, write_customers  # noqa: F401

CODES = [f"K{i:03d}" for i in range(30)]


def _write(sync, names: dict[str, str] | None = None, codes=CODES):
    names = names or {}
    write_customers(sync.customers_xml, [customer_xml(c, names.get(c, f"Kund {c}")) for c in codes])


def _check(run: SyncRun, name: str = "no_failed_customers") -> dg.AssetCheckEvaluation:
    [evaluation] = [e for e in run.result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation


def _names(sync) -> dict[str, str]:
    api = sync.sandbox.admin_api()
    return {c["CustomerCode"]: api.get_customer(c["CustomerCode"])["CustomerName"]
            for c in sync.sandbox.client().list_customers()}


RENAMED = {f"K{i:03d}": f"Renamed {i}" for i in range(10, 20)}  # 10 customers changed in the second file


@pytest.mark.parametrize("rewrite,confirmed", [
    ("none", []), ("half", [f"K{i:03d}" for i in range(10, 15)]), ("foreign", []), ("unknown_status", []),
])
def test_a_change_the_answer_does_not_confirm_is_sent_again_by_the_next_run(sync, rewrite, confirmed):
    _write(sync)
    assert sync.run().metadata()["created"] == 30
    _write(sync, RENAMED)
    sync.sandbox.admin_api().add_fault("customers/batch", "POST", results=rewrite)
    lied = sync.run()
    assert lied.success, lied.failure_message()
    meta = lied.metadata()
    unconfirmed = sorted(set(RENAMED) - set(confirmed))
    assert (meta["updated"], meta["unconfirmed"], meta["failed"]) == (len(confirmed), len(unconfirmed), 0)
    check = _check(lied)
    assert check.passed is False
    assert check.metadata["unconfirmed"].value == len(unconfirmed)
    assert unconfirmed[0] in check.metadata["examples"].value

    repaired = sync.run()  # the sandbox stored the change, but the state must not believe it
    assert repaired.success, repaired.failure_message()
    assert (repaired.metadata()["updated"], repaired.metadata()["unconfirmed"]) == (len(unconfirmed), 0)
    assert sync.sandbox.admin_api().events("batch")[-1]["codes"] == unconfirmed
    assert _check(repaired).passed is True
    assert sync.run().metadata()["sent"] == 0
    assert _names(sync) == {c: RENAMED.get(c, f"Kund {c}") for c in CODES}


@pytest.mark.parametrize("body", [[], {"result": []}, {"results": "ok"}, None], ids=["list", "no-results",
                                                                                    "results-not-a-list", "null"])
def test_an_answer_not_of_the_contracts_shape_fails_the_run_and_records_nothing(sync, body):
    _write(sync)
    sync.sandbox.admin_api().add_fault("customers/batch", "POST", body=body)
    run = sync.run()
    assert not run.success
    message = run.failure_message()
    assert "POST customers/batch" in message and "not the contract's shape" in message
    assert "AttributeError" not in message
    again = sync.run()
    assert again.success, again.failure_message()
    assert (again.metadata()["created"], again.metadata()["updated"]) == (0, 30)  # stored, never recorded


def test_a_trickled_answer_is_a_timeout_that_is_retried(sync):
    sync.setenv(APP4SALES_ANSWER_TIMEOUT="1")
    _write(sync)
    sync.sandbox.admin_api().add_fault("customers/batch", "POST", trickle=2)
    started = time.monotonic()
    run = sync.run()
    assert run.success, run.failure_message()
    # the first attempt was stored and then trickled; the retry updated the same 30 customers
    assert (run.metadata()["created"], run.metadata()["updated"], run.metadata()["unconfirmed"]) == (0, 30, 0)
    assert len(sync.sandbox.client().list_customers()) == 30
    assert time.monotonic() - started < 30


def test_an_answer_trickled_on_every_attempt_fails_in_bounded_time(sync):
    sync.setenv(APP4SALES_ANSWER_TIMEOUT="1")
    _write(sync)
    sync.sandbox.admin_api().add_fault("customers", "GET", trickle=1, times=20)
    started = time.monotonic()
    run = sync.run()
    elapsed = time.monotonic() - started
    assert not run.success
    message = run.failure_message()
    assert "GET customers" in message and "no complete answer within 1 s" in message, message
    assert sync.sandbox.password not in message
    assert elapsed < 30  # 5 attempts of 1 s and their backoff, not the minutes a 1 B/s answer takes


def test_a_customer_app4sales_rejects_keeps_its_last_confirmed_state(sync):
    _write(sync)
    assert sync.run().success
    _write(sync, {"K003": "Renamed 3", "K004": "Renamed 4"})
    sync.sandbox.admin_api().add_fault("customers/batch", "POST", invalid=["K003"], times=5)
    run = sync.run()
    assert run.success, run.failure_message()
    assert (run.metadata()["updated"], run.metadata()["failed"]) == (1, 1)
    assert _check(run).passed is False and "K003" in _check(run).metadata["examples"].value
    sync.sandbox.admin_api().clear_faults()
    again = sync.run()
    assert (again.metadata()["updated"], again.metadata()["sent"]) == (1, 1)
    assert sync.sandbox.admin_api().events("batch")[-1]["codes"] == ["K003"]


def test_a_sync_waits_for_the_administrations_lock_then_fails_naming_the_holder(sync, tmp_path):
    sync.setenv(MONITOR_SYNC_LOCK_TIMEOUT="1")
    _write(sync)
    with SyncState.for_administration(tmp_path / "state", sync.sandbox.admin) as state:
        with state.lock("Dagster run 0b9e-holder"):
            started = time.monotonic()
            run = sync.run()
            elapsed = time.monotonic() - started
    assert not run.success
    assert "Dagster run 0b9e-holder" in run.failure_message()
    assert elapsed < 20
    assert sync.sandbox.admin_api().events() == []  # nothing sent, no script
    assert sync.run().metadata()["created"] == 30  # the lock is free again


def test_a_sync_waiting_for_the_administrations_lock_holds_no_app4sales_connection_slot(sync, tmp_path):
    """The lock first, then the host's slots: a run queued behind another run of its administration does
    not keep the App4Sales host's slots from runs of other administrations (lib/host_slots.py)."""
    sync.setenv(MONITOR_SYNC_LOCK_TIMEOUT="60", MONITOR_APP4SALES_HOST_CONNECTIONS="1")
    _write(sync)
    slots = host_slots(sqlite_url(tmp_path / "state"))
    host = App4SalesApi(url=sync.sandbox.base_url(), username=sync.sandbox.username,
                        password=sync.sandbox.password).slot_host
    results: dict = {}

    def waiting() -> bool:
        return any("being synced by Dagster run 0b9e-holder" in (entry.user_message or "")
                   for run in sync.instance.get_runs() for entry in sync.instance.all_logs(run.run_id))

    with SyncState.for_administration(tmp_path / "state", sync.sandbox.admin) as state:
        with state.lock("Dagster run 0b9e-holder"):
            thread = threading.Thread(target=lambda: results.update(queued=sync.run()), name="queued")
            thread.start()
            deadline = time.monotonic() + 60
            while not waiting():  # the queued run is waiting for the lock now
                assert time.monotonic() < deadline, "the run never started waiting for the lock"
                time.sleep(0.1)
            # another administration's run on the same host gets the host's only slot at once
            with slots.acquire("app4sales", host, 1, limit=1, timeout=0, owner="another administration's run"):
                pass
            assert slots.holders("app4sales", host) == []
    thread.join(60)
    run = results["queued"]
    assert run.success, run.failure_message()
    assert run.metadata()["created"] == 30


def _run_in_thread(results: dict, key: str):
    def target():
        with dg.DagsterInstance.ephemeral() as instance:
            job = build_defs().resolve_job_def("customer_sync_job")
            results[key] = SyncRun(job.execute_in_process(instance=instance, raise_on_error=False))
    thread = threading.Thread(target=target, name=key)
    thread.start()
    return thread


def _wait_for_batch_events(sync, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(sync.sandbox.admin_api().events("batch")) < count:
        assert time.monotonic() < deadline, "the first run never sent its batch"
        time.sleep(0.05)


@pytest.mark.parametrize("first_names,second_names", [(RENAMED, {}), ({}, RENAMED)],
                         ids=["older-file-first", "newer-file-first"])
def test_two_overlapping_runs_leave_app4sales_equal_to_the_last_file(sync, first_names, second_names):
    """Run 1's batch is stored but answered 4 s late; run 2 starts meanwhile on another file.
    Without the lock run 2 would plan against a half-written state and App4Sales or the state would
    keep run 1's file for good."""
    sync.setenv(MONITOR_BATCH_SIZE="10", MONITOR_SYNC_LOCK_TIMEOUT="60")
    api = sync.sandbox.admin_api()
    api.register_script("BeforeUpdateCustomers")
    api.register_script("UpdateCustomers")
    _write(sync, first_names)
    api.add_fault("customers/batch", "POST", late=4)
    results = {}
    first = _run_in_thread(results, "first")
    _wait_for_batch_events(sync, 1)        # run 1 stored its first batch and waits for the answer
    _write(sync, second_names)
    second = _run_in_thread(results, "second")
    first.join(60)
    second.join(60)
    assert results["first"].success, results["first"].failure_message()
    assert results["second"].success, results["second"].failure_message()
    kinds = [e["kind"] if e["kind"] != "script" else e["name"] for e in api.events() if e["kind"] in ("batch", "script")]
    # run 1 brackets its 3 batches, then run 2 brackets its own: never interleaved
    changed = len(set(first_names) ^ set(second_names))
    second_batches = -(-changed // 10)
    assert kinds == (["BeforeUpdateCustomers"] + ["batch"] * 3 + ["UpdateCustomers"]
                     + (["BeforeUpdateCustomers"] + ["batch"] * second_batches + ["UpdateCustomers"]
                        if second_batches else []))
    assert _names(sync) == {c: second_names.get(c, f"Kund {c}") for c in CODES}
    after = sync.run()  # the state agrees with App4Sales: nothing left to send
    assert after.success and after.metadata()["sent"] == 0


def test_two_identical_overlapping_runs_send_everything_once(sync):
    sync.setenv(MONITOR_BATCH_SIZE="10", MONITOR_SYNC_LOCK_TIMEOUT="60")
    _write(sync)
    sync.sandbox.admin_api().add_fault("customers/batch", "POST", late=3)
    results = {}
    first = _run_in_thread(results, "first")
    _wait_for_batch_events(sync, 1)
    second = _run_in_thread(results, "second")
    first.join(60)
    second.join(60)
    assert results["first"].metadata()["created"] == 30
    assert (results["second"].metadata()["sent"], results["second"].metadata()["unchanged"]) == (0, 30)
    assert len(sync.sandbox.admin_api().events("batch")) == 3


def test_a_customer_rejected_for_an_empty_name_is_never_deactivated(sync):
    sync.setenv(MONITOR_DEACTIVATE_MISSING="true", MONITOR_DEACTIVATE_MAX_FRACTION="0.01")
    _write(sync)
    assert sync.run().success
    names = {c: f"Kund {c}" for c in CODES}
    names["K007"] = ""  # still in the file, rejected by normalization
    write_customers(sync.customers_xml, [customer_xml(c, n) for c, n in names.items()])
    run = sync.run()
    assert run.success, run.failure_message()
    assert run.metadata()["deactivated"] == 0
    assert run.metadata("customer_rejections")["row_count"] == 1
    assert sync.sandbox.admin_api().events("deactivate") == []
    assert all(c["CustomerEnabled"] for c in sync.sandbox.client().list_customers())
    write_customers(sync.customers_xml, [customer_xml(c, n) for c, n in names.items() if c != "K007"])
    sync.setenv(MONITOR_DEACTIVATE_MAX_FRACTION="0.1")
    gone = sync.run()  # now it is absent: deactivated (1 of 30 active, within the 10 %)
    assert gone.success, gone.failure_message()
    assert gone.metadata()["deactivated"] == 1
    assert [c["CustomerCode"] for c in sync.sandbox.client().list_customers() if not c["CustomerEnabled"]] == ["K007"]
